# bench_zmanager: the zmanager side of the side-by-side benchmark (bench/README.md). It starts its
# own client processes by running itself again, so it needs nothing beyond the library.
add_executable(bench_zmanager zmanager_bench.cpp)
target_link_libraries(bench_zmanager PRIVATE zmanager::zmanager)
zmanager_warnings(bench_zmanager)
# The frames scenarios move frames as examples/shared_memory does, with its header.
target_include_directories(bench_zmanager PRIVATE ${PROJECT_SOURCE_DIR}/examples/shared_memory)
