// zmanager::Value: the dynamic value containers hold, locally and through a server.
#include <gtest/gtest.h>

#include <algorithm>
#include <unordered_set>

#include "test_types.hpp"

using zmanager::Value;

namespace {

TEST(Value, KnowsItsKindAndRendersLikePython) {
  EXPECT_EQ(Value().kind(), "None");
  EXPECT_EQ(Value(true).kind(), "bool");
  EXPECT_EQ(Value(3).kind(), "int");
  EXPECT_EQ(Value(2.5).kind(), "float");
  EXPECT_EQ(Value("s").kind(), "str");
  EXPECT_EQ(Value(zmanager::Bytes("b")).kind(), "bytes");
  EXPECT_EQ(Value(Value::Array{1, "a"}).kind(), "list");
  Value d(Value::Map{{"k", 1}, {2, Value::Array{true, Value()}}});
  EXPECT_EQ(d.kind(), "dict");
  EXPECT_EQ(d.repr(), "{'k': 1, 2: [True, None]}");
}

// Containers on the server hold millions of Values: anything bigger than a number is boxed.
static_assert(sizeof(Value) == 16);

TEST(Value, CopiesAreDeepAndAMovedFromValueIsNone) {
  Value original(Value::Array{"a long string that does not fit in place", zmanager::Bytes("b"),
                              Value::Map{{"k", 1}}});
  Value copy = original;
  Value moved = std::move(original);
  EXPECT_TRUE(original.is_none());  // NOLINT(bugprone-use-after-move): the documented state
  original = Value("reused");
  EXPECT_EQ(copy, moved);
  EXPECT_EQ(copy.repr(), "['a long string that does not fit in place', b'b', {'k': 1}]");
  EXPECT_NE(&copy.get<Value::Array>()[0].get<std::string>(),
            &moved.get<Value::Array>()[0].get<std::string>());
  EXPECT_EQ(original.get<std::string>(), "reused");
}

TEST(Value, NumbersCompareAndHashByValueAsInPython) {
  EXPECT_EQ(Value(1), Value(1.0));
  EXPECT_EQ(Value(1), Value(1u));
  EXPECT_EQ(Value(1).hash(), Value(1.0).hash());
  EXPECT_NE(Value(1), Value("1"));
  // Python's rule: True == 1 == 1.0, with equal hashes (one dict key), though kinds differ.
  EXPECT_EQ(Value(true), Value(1));
  EXPECT_EQ(Value(false), Value(0.0));
  EXPECT_EQ(Value(true).hash(), Value(1.0).hash());
  EXPECT_LT(Value(false), Value(0.5));
  std::vector<Value> v{Value("b"), Value(2), Value(), Value("a"), Value(1.5)};
  std::sort(v.begin(), v.end());
  EXPECT_EQ(v, (std::vector<Value>{Value(), Value(1.5), Value(2), Value("a"), Value("b")}));
  std::unordered_set<Value> keys{Value("x"), Value(1), Value(1.0)};
  EXPECT_EQ(keys.size(), 2u);
}

TEST(Value, ConvertsToTypedValuesOrSaysWhyNot) {
  EXPECT_EQ(Value(42).as<int>(), 42);
  EXPECT_EQ(Value("hi").as<std::string>(), "hi");
  EXPECT_EQ(Value(Value::Array{1, 2, 3}).as<std::vector<int>>(), (std::vector<int>{1, 2, 3}));
  auto m = Value(Value::Map{{"a", 1}}).as<std::map<std::string, int>>();
  EXPECT_EQ(m.at("a"), 1);
  test::Point p{1, 2, "p"};
  EXPECT_EQ(Value::from(p).as<test::Point>(), p);
  EXPECT_EQ(Value::from(std::vector<std::string>{"x"}).kind(), "list");
  try {
    Value("one").as<int>();
    FAIL() << "no exception";
  } catch (const zmanager::TypeError& e) {
    EXPECT_NE(std::string(e.what()).find("expected int, got str"), std::string::npos) << e.what();
  }
}

class ValuesOnAServer : public ::testing::Test {
 protected:
  void SetUp() override {
    test::register_all(manager);
    manager.start();
  }
  std::uint64_t live(const std::string& type) {
    auto s = manager.stats().objects_by_type;
    return s.count(type) ? s.at(type) : 0;
  }
  zmanager::BaseManager manager;
};

TEST_F(ValuesOnAServer, NestedValuesWithBytesRoundTrip) {
  auto box = manager.create<Box>("Box");
  zmanager::Bytes big(64 * 1024);
  big.data()[100] = std::byte{9};
  Value v(Value::Map{
      {"name", "frame"}, {"size", 65536}, {"data", big}, {"tags", Value::Array{"a", "b"}}});
  box.set(v);
  EXPECT_EQ(box.kind(), "dict");
  Value back = box.get();
  EXPECT_EQ(back, v);
  auto data = back.as<std::map<std::string, Value>>().at("data").as<zmanager::Bytes>();
  EXPECT_EQ(data.data()[100], std::byte{9});
}

TEST_F(ValuesOnAServer, AProxyInsideAValueStaysLiveAndKeepsItsObject) {
  auto box = manager.create<Box>("Box");
  {
    auto maths = manager.create<Maths>("Maths");
    box.set(Value(Value::Map{{"maths", maths}}));
  }  // the client's proxy is gone; the box still holds the object
  EXPECT_EQ(live("Maths"), 1u);
  auto inner =
      box.get().as<std::map<std::string, Value>>().at("maths").as<zmanager::Proxy<Maths>>();
  EXPECT_EQ(inner.add(20, 22), 42);
  box.set(Value());
  inner = {};
  EXPECT_EQ(live("Maths"), 0u);
}

TEST_F(ValuesOnAServer, ValuesCanBeArgumentsOfDynamicCalls) {
  auto maths = manager.create<Maths>("Maths");
  EXPECT_EQ(maths.call<int>("add", Value(2), Value(3)), 5);
  EXPECT_EQ(maths.call<Value>("greet", Value("v")), Value("hello v"));
}

}  // namespace
