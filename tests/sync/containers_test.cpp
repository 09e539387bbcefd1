// dict, list, Value, Array, Namespace and nested proxies: the cases CPython's
// _test_multiprocessing.py checks for a manager's containers, and what zmanager adds.
#include <gmock/gmock.h>

#include <algorithm>

#include "sync_fixture.hpp"

using ::testing::StartsWith;

using zmanager::Value;
using V = Value;

namespace test {
namespace {

class Containers : public SyncTest {};

template <class E, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "no error";
}

TEST_F(Containers, DictBasicsMatchPython) {
  auto d = m().dict<std::string, int>();
  d.set("a", 1);
  d["b"] = 2;
  d["c"] = d["b"];  // the value, not the reference
  EXPECT_EQ(d.get("a"), 1);
  EXPECT_EQ(int(d["c"]), 2);
  EXPECT_EQ(d.get("zz", 0), 0);
  EXPECT_TRUE(d.contains("a"));
  EXPECT_FALSE(d.contains("zz"));
  EXPECT_EQ(d.size(), 3u);
  EXPECT_EQ(d.keys(), (std::vector<std::string>{"a", "b", "c"}));  // insertion order
  EXPECT_EQ(d.values(), (std::vector<int>{1, 2, 2}));
  d.set("a", 10);  // an update keeps the key's place
  EXPECT_EQ(d.items(), (std::vector<std::pair<std::string, int>>{{"a", 10}, {"b", 2}, {"c", 2}}));
  EXPECT_EQ(d.pop("b"), 2);
  EXPECT_EQ(d.pop("b", -1), -1);
  EXPECT_EQ(d.setdefault("e", 5), 5);
  EXPECT_EQ(d.setdefault("e", 6), 5);
  EXPECT_EQ(d.popitem(), (std::pair<std::string, int>{"e", 5}));  // the last inserted
  d.update({{"x", 1}, {"a", 0}});
  EXPECT_EQ(d.copy(), (std::map<std::string, int>{{"a", 0}, {"c", 2}, {"x", 1}}));
  d.del("x");
  EXPECT_EQ(d.size(), 2u);
  d.clear();
  EXPECT_TRUE(d.empty());
}

TEST_F(Containers, DictErrorsAreKeyErrorNamingTheKey) {
  auto d = m().dict<std::string, int>();
  EXPECT_THAT(error_of<zmanager::KeyError>([&] { d.get("zz"); }), StartsWith("'zz'"));
  EXPECT_NE(error_of<zmanager::KeyError>([&] { d.del("zz"); }), "no error");
  EXPECT_NE(error_of<zmanager::KeyError>([&] { d.pop("zz"); }), "no error");
  EXPECT_NE(error_of<zmanager::KeyError>([&] { d.popitem(); }).find("dictionary is empty"),
            std::string::npos);
  auto any = m().dict();
  // A dict cannot be a key: Python's "unhashable type". An array can, as a tuple can.
  EXPECT_NE(error_of<zmanager::TypeError>([&] {
              any.set(V(V::Map{{"k", 1}}), 3);
            }).find("unhashable type: 'dict'"),
            std::string::npos);
  EXPECT_EQ(any.size(), 0u);
  any.set(V(V::Array{1, 2}), 3);
  EXPECT_EQ(any.get(V(V::Array{1, 2})).as<int>(), 3);
}

TEST_F(Containers, EqualNumbersAreOneKeyAsInPython) {
  auto d = m().dict();
  d.set(1, "int");
  d.set(1.0, "float");
  d.set(true, "bool");  // True == 1 == 1.0
  EXPECT_EQ(d.size(), 1u);
  EXPECT_EQ(d.get(1).as<std::string>(), "bool");
  EXPECT_EQ(d.get(2.0, "none").as<std::string>(), "none");
  d.set(2.0, "two");
  EXPECT_EQ(d.keys()[1].kind(), "float");  // 2.0 stays a float on the wire and in the dict
  auto l = m().list();
  l.extend({1, true, 1.0, "a"});
  EXPECT_EQ(l.count(1), 3u);
  l.remove(true);  // the first equal item: the 1
  EXPECT_EQ(l.get(0).kind(), "bool");
  auto mixed = m().list();
  mixed.extend({2, true, 1.5, 0});
  mixed.sort();
  EXPECT_EQ(mixed.to_vector(), (std::vector<V>{0, true, 1.5, 2}));
}

// The compact layout (entries in order + an index of slots, deleted entries left until a
// rebuild) against a plain model, over a deterministic mix of inserts, updates and removals.
TEST_F(Containers, DictMatchesAModelThroughInsertsDeletesAndRebuilds) {
  auto d = m().dict<std::int64_t, std::int64_t>();
  std::vector<std::pair<std::int64_t, std::int64_t>> model;  // insertion order
  auto at = [&](std::int64_t k) {
    return std::find_if(model.begin(), model.end(), [k](const auto& p) { return p.first == k; });
  };
  std::uint64_t state = 12345;
  auto next = [&] {  // a fixed LCG: the same sequence every run
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::int64_t>(state >> 33);
  };
  for (int step = 0; step < 1500; ++step) {
    std::int64_t key = next() % 64, op = next() % 10;
    if (op < 5) {
      d.set(key, step);
      if (auto it = at(key); it != model.end())
        it->second = step;
      else
        model.emplace_back(key, step);
    } else if (op < 8) {
      auto it = at(key);
      if (it == model.end()) {
        EXPECT_THROW(d.del(key), zmanager::KeyError);
      } else {
        EXPECT_EQ(d.pop(key), it->second);
        model.erase(it);
      }
    } else if (op < 9) {
      if (model.empty()) {
        EXPECT_THROW(d.popitem(), zmanager::KeyError);
      } else {
        EXPECT_EQ(d.popitem(), model.back());
        model.pop_back();
      }
    } else {
      auto it = at(key);
      EXPECT_EQ(d.get(key, -1), it == model.end() ? -1 : it->second);
    }
  }
  EXPECT_EQ(d.items(), model);
  EXPECT_EQ(d.size(), model.size());
  d.clear();
  d.set(1, 1);
  EXPECT_EQ(d.items(), (std::vector<std::pair<std::int64_t, std::int64_t>>{{1, 1}}));
}

TEST_F(Containers, DictsKeepTheOrderKeysWereGiven) {
  auto d = m().dict<std::string, int>({{"k", 1}, {"j", 2}});
  d.update({{"q", 0}, {"b", 0}});
  EXPECT_EQ(d.keys(), (std::vector<std::string>{"k", "j", "q", "b"}));
  d.update(std::map<std::string, int>{{"a", 5}});
  EXPECT_EQ(d.get("a"), 5);
}

TEST_F(Containers, ATypedReadOfAnotherTypeIsATypeErrorNamingBoth) {
  auto any = m().dict();
  any.set("n", "not a number");
  auto typed = any.dynamic();  // the same dict, read as dict<string, int>
  zmanager::DictProxy<std::string, int> ints(typed);
  auto what = error_of<zmanager::TypeError>([&] { ints.get("n"); });
  EXPECT_NE(what.find("int"), std::string::npos) << what;
  EXPECT_NE(what.find("str"), std::string::npos) << what;
}

TEST_F(Containers, DynamicDictsHoldAnyValueAndTypedClientsSeeTheSameData) {
  auto d = m().dict();
  d["none"] = V();
  d["flag"] = V(true);
  d["big"] = V(std::uint64_t{1} << 63);
  d["pi"] = V(3.25);
  d["bytes"] = V(zmanager::Bytes(std::string(5000, 'x')));  // a blob frame
  d["list"] = V(V::Array{1, "two", 3.0});
  d["map"] = V(V::Map{{"k", 1}});
  EXPECT_TRUE(d.get("none").is_none());
  EXPECT_EQ(d.get("flag").as<bool>(), true);
  EXPECT_EQ(d.get("big").as<std::uint64_t>(), std::uint64_t{1} << 63);
  EXPECT_EQ(d.get("bytes").as<zmanager::Bytes>().size(), 5000u);
  EXPECT_EQ(d.get("list"), V(V::Array{1, "two", 3.0}));
  zmanager::DictProxy<std::string, std::map<std::string, int>> typed(d.dynamic());
  EXPECT_EQ(typed.get("map"), (std::map<std::string, int>{{"k", 1}}));
}

TEST_F(Containers, ListBasicsMatchPython) {
  auto l = m().list<int>({0, 1, 2});
  l.append(3);
  l.extend({4, 5});
  l.insert(0, -1);
  l.insert(100, 6);  // clamped, as Python's insert
  EXPECT_EQ(l.to_vector(), (std::vector<int>{-1, 0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(l.pop(), 6);
  EXPECT_EQ(l.pop(0), -1);
  l.remove(2);
  EXPECT_EQ(l.index(4), 3u);
  EXPECT_EQ(l.count(1), 1u);
  EXPECT_EQ(l.get(-1), 5);
  l[1] = 7;
  l.set(0, 9);
  EXPECT_EQ(l.to_vector(), (std::vector<int>{9, 7, 3, 4, 5}));
  l.sort();
  EXPECT_EQ(l.to_vector(), (std::vector<int>{3, 4, 5, 7, 9}));
  l.sort(/*descending=*/true);
  l.reverse();
  EXPECT_EQ(l.to_vector(), (std::vector<int>{3, 4, 5, 7, 9}));
  EXPECT_EQ(l.slice(1, -1), (std::vector<int>{4, 5, 7}));
  EXPECT_EQ(l.slice(std::nullopt, 2), (std::vector<int>{3, 4}));
  EXPECT_TRUE(l.contains(7));
  EXPECT_EQ(l + std::vector<int>{1}, (std::vector<int>{3, 4, 5, 7, 9, 1}));
  EXPECT_EQ(l.size(), 5u);  // `+` made a copy
  l.del(0);
  l += {10};
  l *= 2;
  EXPECT_EQ(l.to_vector(), (std::vector<int>{4, 5, 7, 9, 10, 4, 5, 7, 9, 10}));
}

TEST_F(Containers, ListErrorsMatchPython) {
  auto l = m().list<int>({1});
  EXPECT_THAT(error_of<zmanager::IndexError>([&] { l.get(1); }),
              StartsWith("list index out of range"));
  EXPECT_THAT(error_of<zmanager::IndexError>([&] { l.get(-2); }),
              StartsWith("list index out of range"));
  EXPECT_THAT(error_of<zmanager::IndexError>([&] { l.set(5, 0); }),
              StartsWith("list assignment index out of range"));
  EXPECT_THAT(error_of<zmanager::ValueError>([&] { l.remove(9); }),
              StartsWith("list.remove(x): x not in list"));
  EXPECT_THAT(error_of<zmanager::ValueError>([&] { l.index(9); }), StartsWith("9 is not in list"));
  l.pop();
  EXPECT_THAT(error_of<zmanager::IndexError>([&] { l.pop(); }), StartsWith("pop from empty list"));
  auto mixed = m().list();
  mixed.extend({1, "a"});
  EXPECT_NE(error_of<zmanager::TypeError>([&] { mixed.sort(); }).find("'<' not supported"),
            std::string::npos);
}

TEST_F(Containers, NestedProxiesStayLiveAndEveryHolderSeesChanges) {
  auto outer = m().dict();
  auto inner = m().dict<std::string, int>();
  outer["inner"] = V(inner);
  outer["inner"]["k"] = V(5);  // through the proxy stored in the dict
  EXPECT_EQ(inner.get("k"), 5);
  auto again = outer["inner"].as<zmanager::DictProxy<std::string, int>>();
  again["k"] = 6;
  EXPECT_EQ(inner.get("k"), 6);
  EXPECT_TRUE(again == inner);

  auto l = m().list();
  auto q = m().Queue<int>();
  l.append(V(q));
  l[0].as<zmanager::QueueProxy<int>>().put(3);
  EXPECT_EQ(q.get(), 3);
  // Reading a proxy as the wrong kind of proxy is a TypeError.
  auto as_dict = [&] { return l[0].as<zmanager::DictProxy<>>(); };
  EXPECT_THROW(as_dict(), zmanager::TypeError);

  // A plain nested container is a copy, as in Python.
  outer["plain"] = V(V::Map{{"x", 1}});
  auto copy = outer.get("plain");
  EXPECT_EQ(copy, V(V::Map{{"x", 1}}));
}

TEST_F(Containers, AnObjectLivesWhileAContainerHoldsIt) {
  auto holder = m().list();
  auto before = m().stats().objects;
  {
    auto d = m().dict<std::string, int>();
    d["kept"] = 1;
    holder.append(V(d));
  }  // the last client proxy is gone; the list still holds the dict
  EXPECT_EQ(m().stats().objects, before + 1);
  auto kept = holder[0].as<zmanager::DictProxy<std::string, int>>();
  EXPECT_EQ(kept.get("kept"), 1);
  kept = {};
  holder.pop();
  EXPECT_TRUE(eventually([&] { return m().stats().objects == before; }));
}

TEST_F(Containers, ANestedProxyWorksInAnotherClientProcess) {
  auto event = m().Event();
  objects()["event"] = V(event);
  auto waiter = client({"event-wait", "30"});
  event.set();
  EXPECT_EQ(waiter.read_line(), "set");
  EXPECT_EQ(waiter.wait(), 0);
}

TEST_F(Containers, ValueGetSetAndAtomicReadModifyWrite) {
  auto v = m().Value<double>(10.0);
  v.set(10.78);
  EXPECT_DOUBLE_EQ(v.get(), 10.78);
  EXPECT_DOUBLE_EQ(v.fetch_add(1.0), 10.78);
  EXPECT_DOUBLE_EQ(v.get(), 11.78);

  auto n = m().Value<std::int64_t>(0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 250; ++i) n.fetch_add(1);
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(n.get(), 1000);  // Python's `v.value += 1` would lose some of these
  std::int64_t expected = 5;
  EXPECT_FALSE(n.compare_exchange(expected, 7));
  EXPECT_EQ(expected, 1000);
  EXPECT_TRUE(n.compare_exchange(expected, 7));
  EXPECT_EQ(n.exchange(8), 7);
  EXPECT_EQ(n.fetch_sub(3), 8);
  EXPECT_EQ(n.get(), 5);
  auto u = m().Value<std::uint64_t>(5);
  EXPECT_EQ(u.fetch_sub(1), 5u);  // an unsigned delta, not the sum with 2^64 - 1
  EXPECT_EQ(u.get(), 4u);
  // An int Value refuses a float, as ctypes' c_long does.
  EXPECT_THROW(n.dynamic().call<void>("set", 1.5), zmanager::TypeError);
  EXPECT_EQ(n.get(), 5);
}

TEST_F(Containers, ArrayIndexingMatchesPython) {
  auto arr = m().Array<int>({1, 2, 3, 4, 5});
  arr.set(2, 9999);
  arr[0] = 7;
  EXPECT_EQ(arr.get(2), 9999);
  EXPECT_EQ(arr.get(-1), 5);
  EXPECT_EQ(arr.size(), 5u);
  EXPECT_EQ(arr.to_vector(), (std::vector<int>{7, 2, 9999, 4, 5}));
  EXPECT_EQ(arr.slice(1, 3), (std::vector<int>{2, 9999}));
  EXPECT_THROW(arr.get(5), zmanager::IndexError);
  EXPECT_THROW(arr.dynamic().call<void>("setitem", 0, "text"), zmanager::TypeError);
  auto doubles = m().Array<double>({0.5});
  doubles.dynamic().call<void>("setitem", 0, 2);  // an int into a float array is fine
  EXPECT_DOUBLE_EQ(doubles.get(0), 2.0);
  EXPECT_THROW(m().create_dynamic("Array", "z", V::Array{}), zmanager::ValueError);
}

TEST_F(Containers, NamespaceAttributes) {
  auto ns = m().Namespace();
  ns.set("x", 1);
  ns.set("name", std::string("job"));
  EXPECT_EQ(ns.get<int>("x"), 1);
  EXPECT_TRUE(ns.contains("name"));
  EXPECT_EQ(ns.items().size(), 2u);
  ns.del("x");
  EXPECT_THROW(ns.get("x"), zmanager::AttributeError);
  EXPECT_THROW(ns.del("x"), zmanager::AttributeError);
}

TEST_F(Containers, BadArgumentsAreTypedErrorsAndTheServerCarriesOn) {
  auto d = m().dict();
  EXPECT_THROW(d.dynamic().call<void>("setitem", 1), zmanager::TypeError);  // arity
  EXPECT_THROW(d.dynamic().call<void>("no_such_method"), zmanager::AttributeError);
  auto l = m().list<int>({1});
  EXPECT_THROW(l.dynamic().call<void>("getitem", "zero"), zmanager::TypeError);
  EXPECT_THROW(l.dynamic().call<void>("extend", 5), zmanager::TypeError);
  EXPECT_THROW(l.dynamic().call<void>("imul", INT64_MAX), zmanager::ValueError);
  EXPECT_THROW(m().create_dynamic("Queue", "big"), zmanager::TypeError);
  d.set("still", "fine");
  EXPECT_EQ(d.get("still").as<std::string>(), "fine");
}

}  // namespace
}  // namespace test
