// The seed's MathsClass, shared by the server and its clients.
#pragma once

#include <zmanager/zmanager.hpp>

struct MathsClass {
  int add(int x, int y) { return x + y; }
  int mul(int x, int y) { return x * y; }
};
ZMANAGER_EXPOSE(MathsClass, add, mul)
