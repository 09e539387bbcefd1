// maths_server.cpp's registration as a plugin of the generic server, for the same clients:
//   zmanager-server --bind tcp://0.0.0.0:50000 --authkey-file key --plugin ./libmaths_plugin.so
#include <zmanager/plugin.hpp>

#include "maths.hpp"

ZMANAGER_PLUGIN(manager) {
  manager.register_type<MathsClass>("Maths");
}
