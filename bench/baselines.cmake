# The transport floors of the benchmark (bench/README.md): what the same traffic costs with no
# object layer, over raw ZeroMQ and over a Unix socket. Neither uses zmanager's code.
add_executable(bench_zmq_floor zmq_floor.cpp)
target_link_libraries(bench_zmq_floor PRIVATE cppzmq)
zmanager_warnings(bench_zmq_floor)

add_executable(bench_unix_floor unix_floor.cpp)
zmanager_warnings(bench_unix_floor)

add_executable(bench_memcpy_floor memcpy_floor.cpp)
zmanager_warnings(bench_memcpy_floor)
# Its streaming copy is the frame producer's (a header of its own, without zmanager).
target_include_directories(bench_memcpy_floor PRIVATE ${PROJECT_SOURCE_DIR}/examples/shared_memory)
