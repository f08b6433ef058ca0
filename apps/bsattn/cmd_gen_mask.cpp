// bsattn gen-mask: build a block mask from a pattern spec or a head map and write it as .npy/.json
// (+ CSR), printing a one-screen summary.
#include <chrono>
#include <cstdio>
#include <iostream>

#include "apps/bsattn/commands.h"
#include "apps/bsattn/common_options.h"
#include "apps/bsattn/gen_mask_extras.h"
#include "lib/atomic_file.h"
#include "lib/block_sizes.h"
#include "lib/error.h"
#include "lib/mask_export.h"
#include "lib/mask_io.h"
#include "lib/mask_stats.h"
#include "lib/quality/block_mass.h"
#include "lib/tensor/qkv_source.h"
#include "lib/tensor/tensor_io.h"
#include "patterns/adaptive/gpu_select.h"
#include "patterns/registry.h"

namespace bsattn::app {

namespace {

struct GenMaskOptions {
  std::string pattern, head_map;
  bool list_patterns = false;
  bool causal = false;
  uint64_t seed = 0;
  int64_t seq = 0, q_len = 0, kv_len = 0, heads = 1, batch = 1;
  BlockOptions blocks;
  std::string output, csr_prefix, json_out, flex_dir, bsa_dir;
  bool quiet = false, recall = false;
  std::string backend = "cpu";
  std::shared_ptr<GenMaskOrderOptions> order;
  std::shared_ptr<GenMaskInputOptions> inputs;
  CLI::Option* heads_option = nullptr;
};

// row_recall's summary as JSON: mean and worst row per head and overall.
nlohmann::json recall_json(const std::vector<double>& rr, const AttentionProblem& p) {
  const RecallSummary rs = summarize_recall(rr, p.batch, p.heads_q, p.q_len);
  nlohmann::json heads = nlohmann::json::array();
  for (size_t h = 0; h < rs.heads.size(); ++h)
    heads.push_back({{"head", h}, {"mean", rs.heads[h].mean}, {"min", rs.heads[h].min}, {"rows", rs.heads[h].rows}});
  return {{"mean", rs.overall.mean}, {"min", rs.overall.min}, {"rows", rs.overall.rows}, {"per_head", heads},
          {"what", "share of the dense attention mass of each row inside the kept blocks"}};
}

void print_recall(const nlohmann::json& r) {
  std::printf("recall vs dense attention (exact oracle, %.0f ms): mean %.5f, worst row %.5f over %lld rows\n",
              r["oracle_ms"].get<double>(), r["mean"].get<double>(), r["min"].get<double>(),
              (long long)r["rows"].get<int64_t>());
  for (auto& h : r["per_head"])
    std::printf("  head %3lld: mean %.5f, worst row %.5f\n", (long long)h["head"].get<int64_t>(),
                h["mean"].get<double>(), h["min"].get<double>());
}

void print_summary(const BlockMask& m, const MaskStats& st, double ms) {
  std::printf("mask: %s%s\n", m.shape.str().c_str(), m.causal ? " causal" : "");
  if (m.spec.contains("pattern")) std::printf("pattern: %s\n", m.spec["pattern"].get<std::string>().c_str());
  if (m.spec.contains("head_map")) std::printf("head map: %s\n", m.spec["head_map"].get<std::string>().c_str());
  std::printf("seed: %llu   generated in %.1f ms\n", (unsigned long long)m.spec.value("seed", uint64_t(0)), ms);
  // The names and definitions of docs/density.md, as analyze, run and the figures print them.
  std::printf("density %.4f (kept / visible blocks: %lld / %lld%s), pair density %.4f (%.4g computed of %.4g "
              "dense%s (q,k) pairs), empty rows %lld\n",
              st.density, (long long)st.kept_blocks, (long long)st.visible_blocks,
              m.causal ? ("; causal leaves " + std::to_string(st.visible_blocks) + " of " +
                          std::to_string(m.shape.cells()) + " blocks visible").c_str()
                       : "",
              st.pair_density(), double(st.computed_pairs), double(st.dense_pairs), m.causal ? " causal" : "",
              (long long)st.empty_rows);
  std::printf("%5s %-9s %8s %8s %8s %8s %9s %9s\n", "head", "type", "density", "row_min", "row_mean", "row_max",
              "diag_cov", "bandwidth");
  size_t shown = std::min<size_t>(st.heads.size(), 32);
  for (size_t h = 0; h < shown; ++h) {
    auto& hs = st.heads[h];
    std::printf("%5lld %-9s %8.4f %8lld %8.2f %8lld %9.3f %9lld\n", (long long)hs.head, head_type_name(hs.type),
                hs.density, (long long)hs.row_min, hs.row_mean, (long long)hs.row_max, hs.diag_coverage,
                (long long)hs.bandwidth);
  }
  if (shown < st.heads.size())
    std::printf("... %zu more heads (use --json - for all)\n", st.heads.size() - shown);
  if (st.empty_rows) std::printf("warning: %lld rows keep no block (their output is 0, LSE -inf)\n", (long long)st.empty_rows);
}

void run_gen_mask(GenMaskOptions& o) {
  if (o.list_patterns) {
    if (o.json_out.empty()) std::cout << "Patterns (use --pattern NAME:key=value,... or --head-map):\n" << list_patterns_text();
    else write_text_file(o.json_out, list_patterns_json().dump(1) + "\n");
    return;
  }
  // Every output is checked before any work, and they are written together at the end (all or none).
  OutputSet outputs;
  outputs.add(o.output, "-o");
  if (!o.csr_prefix.empty())
    for (const std::string& f : mask_csr_paths(o.csr_prefix)) outputs.add(f, "--csr");
  outputs.add(o.json_out, "--json");
  if (!o.flex_dir.empty()) {
    outputs.add_folder(o.flex_dir, "--flex");
    for (const std::string& f : mask_flex_paths(o.flex_dir)) outputs.add(f, "--flex");
  }
  if (!o.bsa_dir.empty()) {
    outputs.add_folder(o.bsa_dir, "--bsa");
    for (const std::string& f : mask_bsa_paths(o.bsa_dir)) outputs.add(f, "--bsa");
  }
  add_gen_mask_order_outputs(*o.order, outputs);
  MaskRequest req;
  req.shape.q_len = o.q_len ? o.q_len : o.seq;
  req.shape.kv_len = o.kv_len ? o.kv_len : o.seq;
  req.shape.heads = o.heads;
  req.shape.batch = o.batch;
  const BlockSizes blocks = resolve_block_sizes(o.blocks, kDefaultBlockSize);
  req.shape.block_q = blocks.q;
  req.shape.block_kv = blocks.kv;
  if (!o.bsa_dir.empty() && (blocks.q != 128 || blocks.kv != 128))
    throw UsageError("--bsa: Block-Sparse-Attention uses blocks of 128 tokens; this mask has blocks " +
                     std::to_string(blocks.q) + "x" + std::to_string(blocks.kv) + " (allowed: --block 128)");
  req.causal = o.causal;
  req.seed = o.seed;
  if (!o.pattern.empty()) req.pattern = parse_pattern(o.pattern, "--pattern");
  if (!o.head_map.empty()) req.head_map = parse_head_map(o.head_map, o.heads);
  sizes_from_gen_mask_inputs(*o.inputs, req, o.heads_option->count() > 0);
  // Image / video patterns know their lengths from their layout (grid, text, CLS, prompt tokens).
  if (!resolve_natural_lengths(req))
    throw UsageError("give --seq N (or --q-len and --kv-len) with N >= 1");
  if (o.output.empty() && o.csr_prefix.empty() && o.json_out.empty() && o.flex_dir.empty() && o.bsa_dir.empty() &&
      o.quiet)
    throw UsageError("nothing to do: give -o FILE, --csr PREFIX, --flex DIR, --bsa DIR or --json FILE (or drop --quiet)");
  if (!o.output.empty() && o.output.size() < 5)
    throw UsageError("-o '" + o.output + "' must end in .npy or .json");
  auto ext_ok = [](const std::string& p) {
    return p.size() > 4 && (p.compare(p.size() - 4, 4, ".npy") == 0 || (p.size() > 5 && p.compare(p.size() - 5, 5, ".json") == 0));
  };
  if (!o.output.empty() && !ext_ok(o.output)) throw UsageError("-o '" + o.output + "' must end in .npy or .json");

  GenMaskPrepared prepared;
  prepare_gen_mask_order(*o.order, req, prepared);
  prepare_gen_mask_inputs(*o.inputs, req, prepared);
  if (o.recall && !prepared.input_storage)
    throw UsageError("--recall needs the Q/K the mask is judged on: give --q/--k or --synthetic");
  if (o.backend == "cuda" && !prepared.input_storage)
    throw UsageError("--backend cuda selects blocks from Q/K: give --pattern energy:... with --q/--k or --synthetic");
  auto t0 = std::chrono::steady_clock::now();
  BlockMask m = o.backend == "cuda"
                    ? adaptive::generate_mask_gpu(req, *std::static_pointer_cast<Qkv>(prepared.input_storage),
                                                  prepared.input_dtype)
                    : generate_mask(req);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!prepared.order_spec.is_null()) m.spec["order"] = prepared.order_spec;
  if (!prepared.input_spec.is_null()) m.spec["inputs"] = prepared.input_spec;
  finish_gen_mask_order(*o.order, prepared, m);

  MaskStats st = mask_stats(m);
  nlohmann::json recall;
  if (o.recall) {  // (before any file is written: a failure here leaves none behind)
    // The exact oracle on the Q/K the mask was made for: per row, the share of the dense attention
    // mass inside the kept blocks (block by block, never S x S in memory).
    auto qkv = std::static_pointer_cast<Qkv>(prepared.input_storage);
    AttentionProblem p = problem_for(qkv->q, qkv->k);
    auto t1 = std::chrono::steady_clock::now();
    std::vector<double> rr = row_recall(p, qkv->q.data.data(), qkv->k.data.data(), m);
    recall = recall_json(rr, p);
    recall["oracle_ms"] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count();
  }
  if (!o.output.empty()) save_mask(o.output, m);
  if (!o.csr_prefix.empty()) save_mask_csr(o.csr_prefix, m);
  if (!o.flex_dir.empty()) save_mask_flex(o.flex_dir, m);
  if (!o.bsa_dir.empty()) save_mask_bsa(o.bsa_dir, m);
  if (!o.json_out.empty()) {
    nlohmann::json j = {{"schema", "bsattn.mask-stats/v1"}, {"spec", m.spec}, {"stats", to_json(st)}};
    j["shape"] = {{"batch", m.shape.batch}, {"heads", m.shape.heads}, {"q_len", m.shape.q_len},
                  {"kv_len", m.shape.kv_len}, {"block_q", m.shape.block_q}, {"block_kv", m.shape.block_kv},
                  {"mq", m.shape.mq()}, {"mk", m.shape.mk()}, {"causal", m.causal}};
    j["generate_ms"] = ms;
    if (recall.is_object()) j["recall"] = recall;
    write_text_file(o.json_out, j.dump(1) + "\n");
  }
  outputs.commit();
  if (!o.quiet && o.json_out != "-") print_summary(m, st, ms);
  if (recall.is_object() && !o.quiet && o.json_out != "-") print_recall(recall);
}

}  // namespace

void register_gen_mask(CLI::App& app) {
  auto o = std::make_shared<GenMaskOptions>();
  auto* sub = app.add_subcommand("gen-mask", "Generate a block-sparse mask from a pattern and write .npy/.json/CSR");
  sub->footer(
      "Pattern specs: NAME[:key=value,...]; list values continue after commas (dilated:rates=1,2,4).\n"
      "Head map: \"RANGE=SPEC;RANGE=SPEC\", e.g. \"0-3=dense;4-11=random:density=0.3,seed=7;12-15=streaming:sink=1,local=4\".\n"
      "Examples:\n"
      "  bsattn gen-mask --pattern local:window=4 --seq 16384 --heads 16 -o local.npy\n"
      "  bsattn gen-mask --head-map \"0-3=dense;4-15=local:window=2\" --seq 32768 --heads 16 -o m.npy --csr m\n"
      "  bsattn gen-mask --list-patterns");
  auto* gp = "Pattern";
  sub->add_option("-p,--pattern", o->pattern, "Pattern spec for every head, NAME[:key=value,...]")->group(gp);
  sub->add_option("--head-map", o->head_map, "Per-head patterns: \"0-3=dense;4-15=local:window=2\"")->group(gp);
  sub->add_flag("--list-patterns", o->list_patterns, "List every pattern with parameters, ranges and defaults")->group(gp);
  sub->add_flag("--causal", o->causal, "Causal attention (bottom-right aligned when q_len != kv_len)")->group(gp);
  sub->add_option("--seed", o->seed, "Seed for random patterns (recorded in the output)")->default_val(0)->check(seed_check())->group(gp);
  auto* gs = "Sizes";
  sub->add_option("--seq", o->seq, "Sequence length (q_len = kv_len); with --q/--k the tensors'; ViT/SAM/video patterns default to their layout's")->check(CLI::Range(int64_t(1), int64_t(1) << 40))->group(gs);
  sub->add_option("--q-len", o->q_len, "Query length (overrides --seq)")->check(CLI::Range(int64_t(1), int64_t(1) << 40))->group(gs);
  sub->add_option("--kv-len", o->kv_len, "Key/value length (overrides --seq)")->check(CLI::Range(int64_t(1), int64_t(1) << 40))->group(gs);
  o->heads_option = sub->add_option("--heads", o->heads, "Heads (with --q/--k: Q's unless given)")->default_val(1)->check(CLI::Range(int64_t(1), int64_t(1) << 20))->group(gs);
  sub->add_option("--batch", o->batch, "Batch (1 broadcasts)")->default_val(1)->check(CLI::Range(int64_t(1), int64_t(1) << 20))->group(gs);
  add_block_options(*sub, o->blocks, gs, "128");
  auto* go = "Output";
  sub->add_option("-o,--output", o->output, "Mask file: .npy (bool [B,H,Mq,Mk]) or .json (bsattn.mask/v1)")->group(go);
  sub->add_option("--csr", o->csr_prefix, "Also write PREFIX_{kv,q}_{num_blocks,indices}.npy (int32)")->group(go);
  sub->add_option("--flex", o->flex_dir,
                  "Also write FlexAttention's BlockMask tensors into DIR: {,full_}{kv,q}_{num_blocks,indices}.npy "
                  "(partial blocks need mask_mod, full ones not) and flex.json (docs/mask-exports.md)")
      ->type_name("DIR")->group(go);
  sub->add_option("--bsa", o->bsa_dir,
                  "Also write Block-Sparse-Attention's head_mask_type.npy, streaming_info.npy, base_blockmask.npy "
                  "and bsa.json into DIR (block 128)")
      ->type_name("DIR")->group(go);
  sub->add_option("--json", o->json_out, "Write statistics as JSON to FILE ('-' for stdout)")->group(go);
  sub->add_flag("-q,--quiet", o->quiet, "Print no summary")->group(go);
  sub->add_flag("--recall", o->recall,
                "Also judge the mask on its Q/K (--q/--k or --synthetic): per-row share of the dense attention "
                "mass inside the kept blocks, exact (costs a dense pass: O(S^2 D) per head)")
      ->group(go);
  sub->add_option("--backend", o->backend,
                  "cpu, or cuda: the energy selector on the GPU at its pooling level (needs bf16/f16 Q/K: --dtype)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str()
      ->group("Adaptive inputs");
  o->order = add_gen_mask_order_options(*sub);
  o->inputs = add_gen_mask_input_options(*sub);
  sub->callback([o]() { run_gen_mask(*o); });
}

}  // namespace bsattn::app
