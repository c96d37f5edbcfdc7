# Helpers for tests/*/CMakeLists.txt.
#
# sluice_gtest(NAME SOURCES... LIBS...): one gtest binary whose tests ctest lists one by one.
function(sluice_gtest name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gmock GTest::gtest_main)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/bin)
  # Test names carry the binary name ("test_lib_smtp.DataReader.X"): `ctest -R lib_smtp` selects one.
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60 TEST_PREFIX "${name}."
    PROPERTIES ENVIRONMENT "SLUICE_SOURCE_DIR=${CMAKE_SOURCE_DIR};SLUICE_BIN_DIR=${CMAKE_BINARY_DIR}/bin")
endfunction()

# sluice_pytest(NAME FILE [TIMEOUT s] [LABELS ...]): a Python unittest module run with Debian's
# /usr/bin/python3 (the one that sees python3-* packages), given the build's binaries. Run
# through tests/unittest_exit.py: a module whose every test skipped itself exits 77, which
# ctest shows as Skipped (not Passed).
function(sluice_pytest name file)
  cmake_parse_arguments(T "" "TIMEOUT" "LABELS;DEPENDS_TARGETS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_test(NAME ${name} COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/unittest_exit.py ${file}
    WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} SKIP_RETURN_CODE 77
    ENVIRONMENT "SLUICE_SOURCE_DIR=${CMAKE_SOURCE_DIR};SLUICE_BIN_DIR=${CMAKE_BINARY_DIR}/bin;SLUICE_BUILD_DIR=${CMAKE_BINARY_DIR};PYTHONDONTWRITEBYTECODE=1")
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()
