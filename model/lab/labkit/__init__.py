"""flowpic traffic lab: real applications between network namespaces.

See model/lab/README.md for the contract between the lab and the
application drivers in labkit/apps/.
"""
