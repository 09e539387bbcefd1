// Python: with MyManager() as manager: maths = manager.Maths(); print(maths.add(4, 3)) ...
#include <iostream>

#include "maths.hpp"

int main() {
  zmanager::BaseManager manager;  // local address, random authkey
  manager.register_type<MathsClass>("Maths");
  manager.start();  // the server runs in a child process
  auto maths = manager.create<MathsClass>("Maths");
  std::cout << maths.add(4, 3) << '\n';  // 7
  std::cout << maths.mul(7, 8) << '\n';  // 56
  zmanager::Future<int> three = maths.async().add(1, 2);
  std::cout << three.get() << '\n';  // 3
}  // the destructor shuts the server down
