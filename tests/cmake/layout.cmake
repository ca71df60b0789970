# layout.cmake — the shape of the code itself (docs/layout.md).
#  * layout_circles: scripts/check-circles.py on this build: no #include cycle among the project's
#    headers and no call cycle between the objects of the core library (A calls B calls A).
add_test(NAME layout_circles COMMAND ${CLIPNEG_PYTHON} ${CMAKE_SOURCE_DIR}/scripts/check-circles.py ${CMAKE_BINARY_DIR}
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(layout_circles PROPERTIES LABELS unit TIMEOUT 120 ENVIRONMENT "${CLIPNEG_TEST_ENV}")
