# One helper so every folder declares its library, programs and tests the same way.
#
#   maillens_library(NAME core SOURCES a.cc b.cc DEPS absl::strings)
#   maillens_test(NAME core_parser_test SOURCES parser_test.cc DEPS maillens_core)
#   maillens_program(NAME maillens SOURCES main.cc DEPS maillens_cli)
#
# Every target links maillens_settings (warnings, include path from the root, sanitizers).

function(maillens_library)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;DEPS" ${ARGN})
  add_library(maillens_${ARG_NAME} STATIC ${ARG_SOURCES})
  target_link_libraries(maillens_${ARG_NAME} PUBLIC maillens_settings ${ARG_DEPS})
endfunction()

function(maillens_program)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE maillens_settings ${ARG_DEPS})
  # Programs land together in build/bin so scripts and docs name one place.
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
endfunction()

# LABELS lets ctest select groups (-L unit, -L slow, -L fuzz).
function(maillens_test)
  cmake_parse_arguments(ARG "" "NAME;TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE maillens_settings ${ARG_DEPS} GTest::gmock
                                             GTest::gtest_main)
  add_test(NAME ${ARG_NAME} COMMAND ${ARG_NAME})
  set_tests_properties(${ARG_NAME} PROPERTIES
    ENVIRONMENT "MAILLENS_SOURCE_DIR=${PROJECT_SOURCE_DIR};MAILLENS_SHARED_DIR=${MAILLENS_SHARED_DIR};MAILLENS_BIN_DIR=${PROJECT_BINARY_DIR}/bin")
  if(ARG_LABELS)
    set_tests_properties(${ARG_NAME} PROPERTIES LABELS "${ARG_LABELS}")
  else()
    set_tests_properties(${ARG_NAME} PROPERTIES LABELS unit)
  endif()
  if(ARG_TIMEOUT)
    set_tests_properties(${ARG_NAME} PROPERTIES TIMEOUT ${ARG_TIMEOUT})
  endif()
endfunction()
