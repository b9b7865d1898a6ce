#!/bin/sh
# SPDX-License-Identifier: MIT
# make_certs.sh DIR - test PKI for rpc/tls.c: a CA, a server certificate for
# localhost and 127.0.0.1, a client certificate of the CA, and a client
# certificate of another CA.
set -eu
d=$1
mkdir -p "$d"
cd "$d"
key() { openssl req "$@" -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes 2>/dev/null; }
key -x509 -days 2 -keyout ca.key -out ca.pem -subj /CN=test-ca
key -x509 -days 2 -keyout otherca.key -out otherca.pem -subj /CN=other-ca
leaf() { # name ca extension
	key -keyout "$1.key" -out "$1.csr" -subj "/CN=$1"
	printf '%s\n' "$3" > "$1.ext"
	openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 2 \
		-extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
leaf server ca 'subjectAltName=DNS:localhost,IP:127.0.0.1'
leaf client ca 'extendedKeyUsage=clientAuth'
leaf rogue otherca 'extendedKeyUsage=clientAuth'
# An RSA server certificate too: static-RSA and ECDHE-RSA suites need one.
openssl req -newkey rsa:2048 -nodes -keyout server-rsa.key -out server-rsa.csr \
	-subj /CN=server-rsa 2>/dev/null
printf '%s\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1' > server-rsa.ext
openssl x509 -req -in server-rsa.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
	-extfile server-rsa.ext -out server-rsa.pem 2>/dev/null
