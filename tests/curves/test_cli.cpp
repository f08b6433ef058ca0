// The bsattn binary on curve options: bad input exits 2 with one clear line; gen-mask writes the
// permutation the library computes (read back by NumPy); analyze --curves writes JSON.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "lib/curves/order.h"

using namespace bsattn::curves;

namespace {

struct Result {
  int status = -1;
  std::string err;
};

Result run(const std::string& args) {
  std::string errfile = std::string(BSATTN_TEST_DATA_DIR) + "/curves_cli_stderr.txt";
  std::string cmd = std::string(BSATTN_BINARY) + " " + args + " >/dev/null 2>" + errfile;
  int rc = std::system(cmd.c_str());
  Result r;
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  std::ifstream f(errfile);
  std::stringstream s;
  s << f.rdbuf();
  r.err = s.str();
  return r;
}

void expect_usage_error(const std::string& args, const std::string& needle) {
  CAPTURE(args);
  Result r = run(args);
  CHECK(r.status == 2);
  CAPTURE(r.err);
  CHECK(r.err.find("error:") != std::string::npos);
  CHECK(r.err.find(needle) != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);  // one line
}

}  // namespace

TEST_CASE("bad curve input exits 2 with one clear line") {
  expect_usage_error("analyze --curves --grid 0x30x45", "--grid");
  expect_usage_error("analyze --curves --grid 13x-30x45", "--grid");
  expect_usage_error("analyze --curves --grid 13x30x45 --text -5", "--text");
  expect_usage_error("analyze --curves --grid 13x30x45 --blocks 0", "--block");
  expect_usage_error("analyze --curves --grid 13x30x45 --orders peano", "peano");
  expect_usage_error("analyze --curves --grid 13x30x45 --radius -1", "--radius");
  expect_usage_error("analyze --curves", "--grid");
  // gen-mask: the grid plus text must be the sequence.
  expect_usage_error("gen-mask --pattern dense --seq 17776 --order gilbert --grid 13x30x45 --text 100", "must be equal");
  expect_usage_error("gen-mask --pattern dense --seq 200 --order gilbert --grid 2x3x4 --text 300", "must be equal");
  expect_usage_error("gen-mask --pattern dense --seq 24 --order gilbert --grid 0x3x4", "--grid");
  expect_usage_error("gen-mask --pattern dense --q-len 24 --kv-len 48 --order gilbert --grid 2x3x4", "q_len = kv_len");
  expect_usage_error("gen-mask --pattern dense --seq 24 --order hilbert", "--grid");
  expect_usage_error("gen-mask --pattern dense --seq 24 --grid 2x3x4", "--order");
  expect_usage_error("gen-mask --pattern dense --seq 24 --order zigzag --grid 2x3x4", "zigzag");
}

TEST_CASE("gen-mask --order writes the library's permutation; NumPy reads it and its inverse") {
  std::string dir = BSATTN_TEST_DATA_DIR;
  std::string perm = dir + "/curves_perm.npy", inv = dir + "/curves_inv.npy", mask = dir + "/curves_mask.json";
  std::remove(perm.c_str());
  std::remove(inv.c_str());
  Result r = run("gen-mask --pattern dense --seq 1216 --block 64 --order gilbert --grid 5x12x20 --text 16 "
                 "--emit-permutation " + perm + " --emit-inverse " + inv + " -o " + mask + " -q");
  CAPTURE(r.err);
  REQUIRE(r.status == 0);
  Grid g = make_grid(5, 12, 20, "g");
  Perm expect = sequence_order(gilbert_order(g), SequenceLayout{g, 16, true});
  CHECK(read_permutation(perm, 1216) == expect);
  CHECK(read_permutation(inv, 1216) == inverse_permutation(expect));
  // NumPy: int64, shape (1216,), and x[perm][inv] == x.
  std::string py = "/usr/bin/python3 -c \"import numpy as np,sys; p=np.load(sys.argv[1]); q=np.load(sys.argv[2]); "
                   "assert p.dtype==np.int64 and p.shape==(1216,); x=np.arange(1216)*7+3; "
                   "assert (x[p][q]==x).all() and (p[:16]==np.arange(16)).all()\" " + perm + " " + inv;
  CHECK(std::system(py.c_str()) == 0);
  std::ifstream f(mask);
  nlohmann::json j = nlohmann::json::parse(f);
  CHECK(j["spec"]["order"]["name"] == "gilbert");
  CHECK(j["spec"]["order"]["layout"]["text"] == 16);
}

TEST_CASE("analyze --curves --json: one record per order and block, values equal the library's") {
  std::string out = std::string(BSATTN_TEST_DATA_DIR) + "/curves_analyze.json";
  Result r = run("analyze --curves --grid 3x8x10 --text 5 --blocks 16,32 --orders raster,gilbert,tiles:tile=1x4x4 "
                 "--radius 1 --json " + out + " -q");
  CAPTURE(r.err);
  REQUIRE(r.status == 0);
  std::ifstream f(out);
  nlohmann::json j = nlohmann::json::parse(f);
  CHECK(j["schema"] == "bsattn.curves-locality/v1");
  REQUIRE(j["records"].size() == 6);
  auto& rec = j["records"][1];  // gilbert, block 16
  CHECK(rec["order"] == "gilbert");
  CHECK(rec["block"] == 16);
  CHECK(rec["metrics"]["face_step_share"].get<double>() == 1.0);
  CHECK(rec["metrics"]["grid_offset"] == 5);
}

TEST_CASE("the window block density of analyze --curves equals the video-3d mask gen-mask builds on the order") {
  // Two independent implementations (patterns/ and lib/curves/locality) must agree on the kept blocks.
  std::string dir = BSATTN_TEST_DATA_DIR;
  for (const char* order : {"gilbert", "hilbert", "raster"}) {
    CAPTURE(order);
    std::string stats = dir + "/curves_video_stats.json", loc = dir + "/curves_video_loc.json";
    Result a = run(std::string("gen-mask --pattern video-3d:grid=5x12x20,text=0,radius=1,2,2 --seq 1200 --block 64 ") +
                   "--order " + order + " --grid 5x12x20 --json " + stats + " -q");
    CAPTURE(a.err);
    REQUIRE(a.status == 0);
    Result b = run(std::string("analyze --curves --grid 5x12x20 --block 64 --orders ") + order +
                   " --radius 1x2x2 --json " + loc + " -q");
    CAPTURE(b.err);
    REQUIRE(b.status == 0);
    std::ifstream fa(stats), fb(loc);
    nlohmann::json ja = nlohmann::json::parse(fa), jb = nlohmann::json::parse(fb);
    CHECK(ja["stats"]["kept_blocks"].get<int64_t>() ==
          jb["records"][0]["metrics"]["windows"][0]["kept_blocks"].get<int64_t>());
  }
}
