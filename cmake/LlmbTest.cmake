# One helper registers a test with ctest (like libssh's add_cmocka_test).
#
#   llmb_add_test(NAME <name> SOURCES <file>... LABELS <label>...
#                 [LIBS <lib>...] [ENV <VAR=value>...]
#                 [TIMEOUT <seconds>] [RUN_SERIAL] [REDIS])
#
# builds executable <name> from SOURCES, linked to llmb, cmocka, the
# llmb_warnings flags and LIBS, and registers it as test <name> with LABELS.
# A test labelled integration, e2e or chaos (or given REDIS) also links the
# llmb_testsupport library and needs the private redis-server started by the
# "redis" fixture (tests/support/redis-fixture.sh): ctest starts it first and
# the test finds its URL through LLMB_TEST_REDIS_URL_FILE (see
# tests/support/fixture.h). RUN_SERIAL keeps other tests from running at the
# same time (for tests that flush or reconfigure the shared server).
#
#   llmb_add_script_test(NAME <name> COMMAND <program> [<arg>...]
#                        LABELS <label>... [ENV <VAR=value>...]
#                        [TIMEOUT <seconds>] [RUN_SERIAL] [REDIS])
#
# registers a script (an e2e test driving the built binaries) the same way;
# it gets LLMB_BUILD_DIR and LLMB_SOURCE_DIR in its environment, plus
# LLMB_TEST_REDIS_URL_FILE under the same rule as above. Exit code 77 means
# skipped (say why on stderr).

set(LLMB_TEST_REDIS_DIR "${CMAKE_BINARY_DIR}/tests/redis-fixture")
set(LLMB_TEST_REDIS_URL_FILE "${LLMB_TEST_REDIS_DIR}/redis.url")
set(LLMB_TEST_DEFAULT_TIMEOUT 120)

# Sets <out_var> to TRUE when the labels or the REDIS flag ask for the
# redis fixture.
function(llmb_test_wants_redis out_var flag)
  set(wants ${flag})
  foreach(label IN LISTS ARGN)
    if(label MATCHES "^(integration|e2e|chaos)$")
      set(wants TRUE)
    endif()
  endforeach()
  set(${out_var} ${wants} PARENT_SCOPE)
endfunction()

# Applies the properties shared by both kinds of test.
function(llmb_test_properties name wants_redis run_serial timeout labels env)
  if(NOT timeout)
    set(timeout ${LLMB_TEST_DEFAULT_TIMEOUT})
  endif()
  if(wants_redis)
    list(APPEND env "LLMB_TEST_REDIS_URL_FILE=${LLMB_TEST_REDIS_URL_FILE}")
    set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED redis)
  endif()
  set_tests_properties(${name} PROPERTIES
    LABELS "${labels}"
    TIMEOUT ${timeout})
  if(env)
    set_tests_properties(${name} PROPERTIES ENVIRONMENT "${env}")
  endif()
  if(run_serial)
    set_tests_properties(${name} PROPERTIES RUN_SERIAL TRUE)
  endif()
endfunction()

function(llmb_add_test)
  cmake_parse_arguments(T "RUN_SERIAL;REDIS" "NAME;TIMEOUT"
                        "SOURCES;LABELS;LIBS;ENV" ${ARGN})
  if(NOT T_NAME OR NOT T_SOURCES OR NOT T_LABELS)
    message(FATAL_ERROR "llmb_add_test needs NAME, SOURCES and LABELS")
  endif()
  if(T_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "llmb_add_test(${T_NAME}): unknown arguments "
                        "${T_UNPARSED_ARGUMENTS}")
  endif()
  llmb_test_wants_redis(wants_redis "${T_REDIS}" ${T_LABELS})

  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE
    llmb PkgConfig::CMOCKA llmb_warnings ${T_LIBS})
  if(wants_redis)
    target_link_libraries(${T_NAME} PRIVATE llmb_testsupport)
  endif()

  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  llmb_test_properties(${T_NAME} "${wants_redis}" "${T_RUN_SERIAL}"
                       "${T_TIMEOUT}" "${T_LABELS}" "${T_ENV}")
endfunction()

function(llmb_add_script_test)
  cmake_parse_arguments(T "RUN_SERIAL;REDIS" "NAME;TIMEOUT"
                        "COMMAND;LABELS;ENV" ${ARGN})
  if(NOT T_NAME OR NOT T_COMMAND OR NOT T_LABELS)
    message(FATAL_ERROR "llmb_add_script_test needs NAME, COMMAND and LABELS")
  endif()
  if(T_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "llmb_add_script_test(${T_NAME}): unknown arguments "
                        "${T_UNPARSED_ARGUMENTS}")
  endif()
  llmb_test_wants_redis(wants_redis "${T_REDIS}" ${T_LABELS})

  add_test(NAME ${T_NAME} COMMAND ${T_COMMAND})
  set(env ${T_ENV}
      "LLMB_BUILD_DIR=${CMAKE_BINARY_DIR}"
      "LLMB_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
  llmb_test_properties(${T_NAME} "${wants_redis}" "${T_RUN_SERIAL}"
                       "${T_TIMEOUT}" "${T_LABELS}" "${env}")
  set_tests_properties(${T_NAME} PROPERTIES SKIP_RETURN_CODE 77)
endfunction()
