// Generated-by-hand preprocessor map over up to 48 names (the methods of one class).
#pragma once

#define ZMANAGER_DETAIL_CAT_(a, b) a##b
#define ZMANAGER_DETAIL_CAT(a, b) ZMANAGER_DETAIL_CAT_(a, b)
#define ZMANAGER_DETAIL_NARGS_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, \
                               _16, _17, _18, _19, _20, _21, _22, _23, _24, _25, _26, _27, _28,  \
                               _29, _30, _31, _32, _33, _34, _35, _36, _37, _38, _39, _40, _41,  \
                               _42, _43, _44, _45, _46, _47, _48, N, ...)                        \
  N
#define ZMANAGER_DETAIL_NARGS(...)                                                                \
  ZMANAGER_DETAIL_NARGS_(__VA_ARGS__, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, \
                         33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16,  \
                         15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)
/// ZMANAGER_DETAIL_MAP(f, C, a, b, c) expands to f(C, a) f(C, b) f(C, c).
#define ZMANAGER_DETAIL_MAP(f, C, ...) \
  ZMANAGER_DETAIL_CAT(ZMANAGER_DETAIL_MAP_, ZMANAGER_DETAIL_NARGS(__VA_ARGS__))(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_1(f, C, x) f(C, x)
#define ZMANAGER_DETAIL_MAP_2(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_1(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_3(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_2(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_4(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_3(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_5(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_4(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_6(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_5(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_7(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_6(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_8(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_7(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_9(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_8(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_10(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_9(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_11(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_10(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_12(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_11(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_13(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_12(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_14(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_13(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_15(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_14(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_16(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_15(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_17(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_16(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_18(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_17(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_19(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_18(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_20(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_19(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_21(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_20(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_22(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_21(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_23(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_22(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_24(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_23(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_25(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_24(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_26(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_25(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_27(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_26(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_28(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_27(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_29(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_28(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_30(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_29(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_31(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_30(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_32(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_31(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_33(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_32(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_34(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_33(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_35(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_34(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_36(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_35(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_37(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_36(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_38(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_37(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_39(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_38(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_40(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_39(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_41(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_40(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_42(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_41(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_43(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_42(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_44(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_43(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_45(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_44(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_46(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_45(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_47(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_46(f, C, __VA_ARGS__)
#define ZMANAGER_DETAIL_MAP_48(f, C, x, ...) f(C, x) ZMANAGER_DETAIL_MAP_47(f, C, __VA_ARGS__)
