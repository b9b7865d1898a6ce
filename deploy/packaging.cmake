# Debian packages, built by CPack in a build folder (docs/deploy.md):
#   cmake -S . -B build-deb -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF
#   cmake --build build-deb -j2 && (cd build-deb && cpack -G DEB)
# gives flowpic-agent, flowpic-collector and flowpic (the CLI with its
# embedded model), each with its man pages, units and conffiles.
set(FLOWPIC_DEPLOY ${CMAKE_SOURCE_DIR}/deploy)

# Man pages from --help (help2man), when it is installed: lintian wants one
# per program, and --help is where the options are kept true.
find_program(FLOWPIC_HELP2MAN help2man)
function(flowpic_manpage target section component summary)
  if(NOT FLOWPIC_HELP2MAN)
    return()
  endif()
  set(page ${CMAKE_BINARY_DIR}/man/${target}.${section})
  add_custom_command(OUTPUT ${page}.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
    COMMAND ${FLOWPIC_HELP2MAN} --no-info --no-discard-stderr --section=${section}
      --name=${summary} --version-string=${PROJECT_VERSION}
      --output=${page} $<TARGET_FILE:${target}>
    COMMAND gzip -9nf ${page}
    DEPENDS ${target}
    COMMENT "help2man ${target}.${section}"
    VERBATIM)
  add_custom_target(man-${target} ALL DEPENDS ${page}.gz)
  install(FILES ${page}.gz DESTINATION share/man/man${section} COMPONENT ${component})
endfunction()

flowpic_manpage(flowpic-agent 8 agent "classify this host's encrypted traffic with eBPF")
flowpic_manpage(flowpic-collector 1 collector "receive and store flowpic verdicts over gRPC")
flowpic_manpage(flowpic 1 cli "classify captures from packet sizes and times")
flowpic_manpage(flowpic-send 1 cli "send samples' verdicts to a flowpic collector")

# Units, conffiles and documentation, per package.  Unit files go to
# /lib/systemd/system (Debian 12's unit folder for packages), config to /etc.
install(FILES ${FLOWPIC_DEPLOY}/systemd/flowpic-agent.service
  DESTINATION /lib/systemd/system COMPONENT agent)
install(FILES ${FLOWPIC_DEPLOY}/systemd/flowpic-collector.service
  DESTINATION /lib/systemd/system COMPONENT collector)
install(FILES ${FLOWPIC_DEPLOY}/etc/agent.conf ${FLOWPIC_DEPLOY}/etc/agent.env
  DESTINATION /etc/flowpic COMPONENT agent)
install(FILES ${FLOWPIC_DEPLOY}/etc/collector.env
  DESTINATION /etc/flowpic COMPONENT collector)
# The dashboard's pages (--web-listen; docs/dashboard.md): the collector looks
# for them in /usr/share/flowpic/web (WEB_ROOT_INSTALLED); the chart library
# is Debian's libjs-chart.js, a dependency, not a copy.
install(DIRECTORY ${CMAKE_SOURCE_DIR}/collector/web/static/
  DESTINATION share/flowpic/web COMPONENT collector)
# Bash completions: one file serves the four programs (options from --help);
# bash-completion loads it by the command's name.
foreach(prog_pkg flowpic-agent:agent flowpic-collector:collector flowpic:cli flowpic-send:cli)
  string(REPLACE ":" ";" pp ${prog_pkg})
  list(GET pp 0 prog)
  list(GET pp 1 pkg)
  install(FILES ${FLOWPIC_DEPLOY}/completions/flowpic DESTINATION share/bash-completion/completions
    RENAME ${prog} COMPONENT ${pkg})
endforeach()

foreach(pkg agent collector cli)
  if(pkg STREQUAL "cli")
    set(name flowpic)
  else()
    set(name flowpic-${pkg})
  endif()
  set(docdir ${CMAKE_BINARY_DIR}/deb-doc/${name})
  file(MAKE_DIRECTORY ${docdir})
  # Debian wants the changelog compressed and reproducible (gzip -n).
  set(NAME ${name})
  set(VERSION ${PROJECT_VERSION})
  configure_file(${FLOWPIC_DEPLOY}/debian/changelog ${docdir}/changelog.Debian @ONLY)
  add_custom_command(OUTPUT ${docdir}/changelog.Debian.gz
    COMMAND gzip -9nkf ${docdir}/changelog.Debian
    DEPENDS ${docdir}/changelog.Debian
    VERBATIM)
  add_custom_target(deb-doc-${pkg} ALL DEPENDS ${docdir}/changelog.Debian.gz)
  install(FILES ${FLOWPIC_DEPLOY}/debian/copyright ${docdir}/changelog.Debian.gz
    DESTINATION share/doc/${name} COMPONENT ${pkg})
  install(FILES ${FLOWPIC_DEPLOY}/debian/lintian/${name}
    DESTINATION share/lintian/overrides COMPONENT ${pkg})
endforeach()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME flowpic)
set(CPACK_PACKAGE_VENDOR flowpic)
set(CPACK_PACKAGE_CONTACT "flowpic maintainers <flowpic@example.org>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL agent collector cli)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.org/flowpic")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)

set(CPACK_DEBIAN_AGENT_PACKAGE_NAME flowpic-agent)
set(CPACK_DEBIAN_AGENT_PACKAGE_SECTION net)
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "adduser")
set(CPACK_COMPONENT_AGENT_DESCRIPTION "encrypted-traffic classifier agent (eBPF)
flowpic-agent captures packet sizes and times per flow with XDP (ingress)
and TC (egress) programs, draws each flow's 15-second blocks as FlowPics,
classifies them with an int8 CNN (voip, video, file_transfer, chat,
browsing, or unknown) and streams the verdicts to a flowpic collector over
gRPC, keeping them on disk while the collector is away.  It never reads
payload, ports or addresses to decide.")
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA
  "${FLOWPIC_DEPLOY}/debian/agent/conffiles;${FLOWPIC_DEPLOY}/debian/agent/postinst;${FLOWPIC_DEPLOY}/debian/agent/prerm;${FLOWPIC_DEPLOY}/debian/agent/postrm")

set(CPACK_DEBIAN_COLLECTOR_PACKAGE_NAME flowpic-collector)
set(CPACK_DEBIAN_COLLECTOR_PACKAGE_DEPENDS "adduser, libjs-chart.js")
set(CPACK_COMPONENT_COLLECTOR_DESCRIPTION "central collector of flowpic verdicts
flowpic-collector receives the verdicts of flowpic agents over gRPC
(HTTP/2, TLS, tokens), stores each verdict exactly once in SQLite or
PostgreSQL, and answers queries over them; its web dashboard shows the
verdicts live, the flows with their FlowPics, and the agents.")
set(CPACK_DEBIAN_COLLECTOR_PACKAGE_CONTROL_EXTRA
  "${FLOWPIC_DEPLOY}/debian/collector/conffiles;${FLOWPIC_DEPLOY}/debian/collector/postinst;${FLOWPIC_DEPLOY}/debian/collector/prerm;${FLOWPIC_DEPLOY}/debian/collector/postrm")

set(CPACK_DEBIAN_CLI_PACKAGE_NAME flowpic)
set(CPACK_COMPONENT_CLI_DESCRIPTION "classify packet captures from packet sizes and times
flowpic reads pcap, pcapng and samples CSV files, draws each flow's
FlowPics and classifies them with the embedded int8 CNN (the same model and
rules as flowpic-agent), and exports training pictures.  flowpic-send
streams verdicts to a collector.")

include(CPack)
