# Writes one program's --help as a plain text page, <OUT_DIR>/<NAME>.txt,
# and, when HELP2MAN is set, as a man page <OUT_DIR>/<NAME>.1 made from
# the same --help and --version. Run at build time by the llmb_help_pages
# target of the top-level CMakeLists.txt:
#   cmake -DBIN=path -DNAME=llmb-worker -DDESC="..." -DOUT_DIR=dir
#         [-DHELP2MAN=/usr/bin/help2man] -P HelpPage.cmake

execute_process(COMMAND "${BIN}" --help OUTPUT_FILE "${OUT_DIR}/${NAME}.txt"
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${BIN} --help failed: ${rc}")
endif()
if(HELP2MAN)
  execute_process(COMMAND "${HELP2MAN}" --no-info --name "${DESC}"
                          --output "${OUT_DIR}/${NAME}.1" "${BIN}"
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "help2man ${BIN} failed: ${rc}")
  endif()
endif()
