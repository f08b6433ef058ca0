// Pattern spec grammar, typed parameters and sweep axes.
#include <doctest/doctest.h>

#include "lib/error.h"
#include "lib/spec.h"

using namespace bsattn;

TEST_CASE("spec grammar: name, key=value pairs, list continuation") {
  auto s = parse_spec("dilated:rates=1,2,4,window=3", "--pattern");
  CHECK(s.name == "dilated");
  REQUIRE(s.args.size() == 2);
  CHECK(s.args[0] == std::make_pair(std::string("rates"), std::string("1,2,4")));
  CHECK(s.args[1] == std::make_pair(std::string("window"), std::string("3")));
  CHECK(s.str() == "dilated:rates=1,2,4,window=3");
  CHECK(parse_spec("dense", "p").args.empty());
  CHECK(parse_spec("dense:", "p").args.empty());
  CHECK_THROWS_WITH_AS(parse_spec(":a=1", "--pattern"), doctest::Contains("no pattern name"), UsageError);
  CHECK_THROWS_WITH_AS(parse_spec("x:1,a=2", "--pattern"), doctest::Contains("not key=value"), UsageError);
  CHECK_THROWS_WITH_AS(parse_spec("x:a=1,a=2", "--pattern"), doctest::Contains("given twice"), UsageError);
  CHECK_THROWS_WITH_AS(parse_spec("x:=2", "--pattern"), doctest::Contains("empty parameter"), UsageError);
}

TEST_CASE("typed parameters: defaults, ranges, kinds") {
  std::vector<ParamDef> defs = {{"n", ParamKind::Int, "4", 1, 10, "n", {}},
                                {"f", ParamKind::Float, "0.5", 0, 1, "f", {}},
                                {"b", ParamKind::Bool, "false", 0, 0, "b", {}},
                                {"s", ParamKind::String, "a", 0, 0, "s", {"a", "b"}},
                                {"l", ParamKind::IntList, "1,2", 0, 9, "l", {}},
                                {"g", ParamKind::Dims, "2x3x4", 1, 100, "g", {}},
                                {"req", ParamKind::Int, "", 0, 5, "required", {}}};
  Params p(defs, {{"n", "7"}, {"req", "0"}, {"b", "yes"}}, "pattern 't'");
  CHECK(p.get_int("n") == 7);
  CHECK(p.get_float("f") == 0.5);
  CHECK(p.get_bool("b"));
  CHECK(p.get_string("s") == "a");
  CHECK(p.get_int_list("l") == std::vector<int64_t>{1, 2});
  CHECK(p.get_dims("g") == std::vector<int64_t>{2, 3, 4});
  CHECK(p.given("n"));
  CHECK_FALSE(p.given("f"));
  CHECK(p.to_json()["l"] == nlohmann::json::array({1, 2}));
  using A = std::vector<std::pair<std::string, std::string>>;
  CHECK_THROWS_WITH_AS(Params(defs, A{{"req", "1"}, {"n", "11"}}, "pattern 't'"), doctest::Contains("out of range [1, 10]"), UsageError);
  CHECK_THROWS_WITH_AS(Params(defs, A{}, "pattern 't'"), doctest::Contains("needs parameter 'req'"), UsageError);
  CHECK_THROWS_WITH_AS(Params(defs, A{{"req", "1"}, {"zz", "1"}}, "pattern 't'"), doctest::Contains("no parameter 'zz'"), UsageError);
  CHECK_THROWS_WITH_AS(Params(defs, A{{"req", "1"}, {"f", "inf"}}, "pattern 't'"), doctest::Contains("finite"), UsageError);
  CHECK_THROWS_WITH_AS(Params(defs, A{{"req", "1"}, {"n", "3.5"}}, "pattern 't'"), doctest::Contains("not an integer"), UsageError);
  CHECK_THROWS_WITH_AS(Params(defs, A{{"req", "1"}, {"s", "c"}}, "pattern 't'"), doctest::Contains("allowed: a, b"), UsageError);
  CHECK_THROWS_WITH_AS(Params(defs, A{{"req", "1"}, {"l", "1,10"}}, "pattern 't'"), doctest::Contains("out of range"), UsageError);
  CHECK_THROWS_WITH_AS(Params(defs, A{{"req", "1"}, {"g", "2x0"}}, "pattern 't'"), doctest::Contains("positive"), UsageError);
  CHECK_THROWS_WITH_AS(Params(defs, A{{"req", "1"}, {"b", "maybe"}}, "pattern 't'"), doctest::Contains("boolean"), UsageError);
}

TEST_CASE("list items: an empty one is refused, naming the option and showing a well-formed list") {
  CHECK(split_list("0.1,0.5", "--density", "0.1,0.5") == std::vector<std::string>{"0.1", "0.5"});
  CHECK(split_list("local;random:density=0.2,seed=1", "--patterns", "a;b", ';') ==
        std::vector<std::string>{"local", "random:density=0.2,seed=1"});
  CHECK(split_list("7", "--seq", "1,2") == std::vector<std::string>{"7"});
  CHECK_THROWS_WITH_AS(split_list("0.1,,0.5", "--density", "0.1,0.5"),
                       "--density: empty item in '0.1,,0.5' (give comma-separated values, e.g. 0.1,0.5)", UsageError);
  CHECK_THROWS_WITH_AS(split_list("a;;b", "--head-map", "0-1=dense;2-3=local", ';'),
                       "--head-map: empty item in 'a;;b' (give ';'-separated values, e.g. 0-1=dense;2-3=local)",
                       UsageError);
  for (const char* bad : {",1", "1,", "1,,2", "1, ,2", ","})
    CHECK_THROWS_WITH_AS(split_list(bad, "--seq", "1,2"), doctest::Contains("--seq: empty item"), UsageError);
  for (const char* bad : {"", " "})
    CHECK_THROWS_WITH_AS(split_list(bad, "--seq", "1,2"), doctest::Contains("--seq: empty value"), UsageError);
  CHECK_THROWS_WITH_AS(parse_int_axis("1024,,2048", "--seq", "1024,2048"), doctest::Contains("e.g. 1024,2048"),
                       UsageError);
  CHECK_THROWS_WITH_AS(parse_float_axis("0.5,", "--density"), doctest::Contains("empty item"), UsageError);
  CHECK_THROWS_WITH_AS(parse_spec("local:window=1,,window=2", "--pattern"), doctest::Contains("--pattern: empty item"),
                       UsageError);
  CHECK_THROWS_WITH_AS(parse_spec("local:window=1,", "--pattern"), doctest::Contains("--pattern: empty item"),
                       UsageError);
}

TEST_CASE("sweep axes") {
  CHECK(parse_int_axis("1024,2048", "--seq") == std::vector<int64_t>{1024, 2048});
  CHECK(parse_int_axis("2:8:3", "--seq") == std::vector<int64_t>{2, 5, 8});
  auto f = parse_float_axis("0.1:0.5:0.1", "--density");
  REQUIRE(f.size() == 5);
  CHECK(f[4] == doctest::Approx(0.5));
  CHECK_THROWS_AS(parse_float_axis("0.5:0.1:0.1", "--density"), UsageError);
  CHECK_THROWS_AS(parse_int_axis("1:2", "--seq"), UsageError);
}
