// attnbench: the command-line tool of the suite.
//   attnbench sweep --preset smoke|default|paper [--axis seq_len=512,1024 ...] [--kernels a,b]
//                   [--backend cpu|cuda|all] [--out FILE] [--resume FILE] [--shard I/N] ...
//   attnbench list [--json] [--verbose]
//   attnbench eval --kernel NAME --inputs DIR --output FILE.npy [--causal|--bidirectional]
//                  [--param key=value ...]
//   attnbench export --kernel NAME --out DIR [--axis name=value ...]   (for peers/)
//   attnbench compare BASE.json NEW.json [--threshold 10%] [--alpha 0.05] [--markdown]
//                     [--require-all]
//   attnbench calibrate [--quick] [--json]     this machine's sgemm rate and bandwidth (and the
//                                              GPU's GEMM rates, bandwidth and clocks)
//   attnbench merge FILES... --out FILE        join the shards (results files) of one sweep
// This file only declares the options; each subcommand is one call into the harness library
// (sweep_command.hpp, commands.hpp, export.hpp, merge.hpp). Every bad input gives a one-line message on
// stderr and exit status 2 (compare exits 1 for a regression); numeric options are checked
// for range as they are parsed (cli_options.hpp). The results schema is results/README.md.
#include <csignal>
#include <functional>
#include <new>
#include <utility>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli_options.hpp"
#include "commands.hpp"
#include "compare.hpp"
#include "export.hpp"
#include "heap.hpp"
#include "merge.hpp"
#include "noise.hpp"
#include "sweep_command.hpp"
#include "text.hpp"

using namespace attnbench;

namespace {

using Command = std::pair<CLI::App*, std::function<int()>>;

// The exit statuses, under every --help.
constexpr const char* kExitStatuses =
    "Exit status: 0 done; 1 compare found a regression (or, with --require-all, a missing row); "
    "2 a bad input (option, file, sweep file, results file) or a step that could not run, with "
    "one line on stderr; 130 a sweep interrupted (every finished row is saved).";
constexpr IntRange kThreadsRange{1, 4096};
constexpr RealRange kWaitRange{0, 7 * 24 * 3600};

Command add_sweep(CLI::App& app, SweepArgs& a, const std::string& cmdline) {
  auto* s = app.add_subcommand("sweep", "run the product of the axes over the kernels and backends");
  auto* sweep_file = cli::nonempty(
      s->add_option("--sweep", a.sweep_file, "sweep description file (JSON)"));
  cli::nonempty(s->add_option("--preset", a.preset, "sweep preset: smoke, default or paper"),
                "name")
      ->excludes(sweep_file);
  cli::nonempty(s->add_option("--axis", a.axes,
                              "override an axis in every group: name=v1,v2 (repeatable), e.g. "
                              "seq_len=512,1024"),
                "axis")
      ->take_all()
      ->allow_extra_args(false);
  cli::nonempty_list(s->add_option("--kernels", a.kernels,
                                   "kernels to run, comma-separated (default: the sweep's)"));
  s->add_option("--backend", a.backend, "cpu, cuda or all (default: the sweep's, usually all)")
      ->check(CLI::IsMember({"cpu", "cuda", "all"}));
  cli::nonempty(s->add_option("--out", a.out,
                              "results file (default results/<date>-<host>-<preset>.json)"));
  s->add_flag("--force", a.force, "replace --out when it exists (else --resume continues it)");
  cli::nonempty(s->add_option("--resume", a.resume,
                              "continue this results file with the sweep it stores: points already "
                              "in it (ok or skipped) are not run again, error rows are re-run; "
                              "options that would change the sweep are refused unless --extend"));
  s->add_flag("--extend", a.extend,
              "with --resume: add the points and settings the other options ask for to the "
              "stored sweep (recorded in the file's resumes)");
  cli::real(s->add_option("--wait", a.wait,
                          "wait up to this many seconds for another run writing the same file "
                          "(default: fail at once, naming it)"),
            kWaitRange);
  cli::nonempty(s->add_option("--shard", a.shard,
                              "run shard I of N (1 <= I <= N) of the expanded points; every point "
                              "is in exactly one shard; join the files with `attnbench merge`"),
                "shard");
  cli::real(s->add_option("--min-time", a.min_time, "least timed seconds per point"),
            kMinTimeRange);
  cli::whole(s->add_option("--min-reps", a.min_reps, "least timed runs per point"), kRepsRange);
  cli::whole(s->add_option("--max-reps", a.max_reps, "most timed runs per point"), kRepsRange);
  cli::whole(s->add_option("--warmup", a.warmup, "untimed runs before timing"), kWarmupRange);
  cli::real(s->add_option("--max-point-seconds", a.max_point_seconds,
                          "skip a point whose time, extrapolated from smaller points, exceeds "
                          "this; also ends a point's timing loop (0 = no limit; default 60)"),
            kPointSecondsRange);
  cli::whole(s->add_option("--retries", a.retries,
                           "re-measure a noisy point (spread, context switches or load over the "
                           "thresholds of docs/measurement.md) up to N times and keep the "
                           "quietest (default 2)"),
             IntRange{0, noise::kMaxRetries});
  cli::real(s->add_option("--max-noise", a.max_noise,
                          "also sample until the samples' relative standard deviation is at most "
                          "X (0.02 = 2 %), up to --max-reps"),
            RealRange{0, 1, true, false});
  cli::size(s->add_option("--memory-limit", a.memory_limit,
                          "skip points needing more memory: e.g. 20G (GiB), 20GB, bytes (default "
                          "80 % of physical / device memory)"));
  cli::whole(s->add_option("--threads", a.threads,
                           "cpu threads (default: OMP_NUM_THREADS or every core)"),
             kThreadsRange);
  cli::nonempty(s->add_option("--vanilla", a.vanilla,
                              "kernel the vs_vanilla ratios are taken against"),
                "name");
  s->add_flag("--dry-run", a.dry_run, "print the points and exit");
  s->add_flag("--json", a.json, "with --dry-run: the points, timing and environment as JSON");
  s->add_flag("--no-calibrate", a.no_calibrate,
              "do not measure the sgemm rate and bandwidth first (rows then carry no pct_of_peak)");
  s->add_flag("--quiet", a.quiet, "no progress on stderr");
  s->add_flag("--warm", a.warm,
              "cuda: do not flush the L2 cache before each sample (default: every sample starts "
              "cold)");
  return {s, [&a, &cmdline] { return run_sweep_command(a, cmdline); }};
}

Command add_list(CLI::App& app, ListArgs& a) {
  auto* s = app.add_subcommand("list", "the registered kernels, their forms and parameters");
  s->add_flag("--json", a.json, "machine-readable output");
  s->add_flag("--verbose", a.verbose, "also each kernel's source file");
  return {s, [&a] { return run_list_command(a); }};
}

Command add_eval(CLI::App& app, EvalArgs& a) {
  auto* s = app.add_subcommand("eval", "run one kernel on your own tensors (.npy files)");
  cli::nonempty(s->add_option("--kernel", a.options.kernel, "kernel name (attnbench list)"), "name")
      ->required();
  cli::nonempty(s->add_option("--inputs", a.options.inputs_dir,
                "folder with q.npy, k.npy, v.npy float32 [batch, heads, N, dh]; codebook "
                "methods: codes.npy int32/int64 [batch, heads, N, B], codebooks.npy float32 "
                "[heads, B, W, dh], optional wq/wk/wv.npy [heads, B, dh, dh]; lisa_soft: probs.npy "
                "float32 [batch, heads, N, B, W]"))
      ->required();
  cli::nonempty(s->add_option("--output", a.options.output_path,
                              "output .npy, float32 [batch, heads, N, dh]"))
      ->required();
  s->add_flag("--causal", a.causal, "causal form (the default when the kernel has it)")
      ->excludes(s->add_flag("--bidirectional", a.bidirectional, "bidirectional form"));
  cli::nonempty(s->add_option("--param", a.params,
                              "method parameter key=value (repeatable), e.g. decay=0.1"),
                "parameter")
      ->take_all()
      ->allow_extra_args(false);
  s->add_option("--backend", a.backend, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  cli::size(s->add_option_function<std::string>(
      "--memory-limit",
      [&a](const std::string& text) {
        a.options.memory_limit = parse_size(text, "--memory-limit");
      },
      "refuse a point whose declared peak needs more memory, as sweep skips it: e.g. 20G "
      "(default 80 % of physical / device memory)"));
  return {s, [&a] { return run_eval_command(a); }};
}

Command add_compare(CLI::App& app, CompareArgs& a) {
  auto* s = app.add_subcommand("compare", "compare two results files; exit 1 on a regression");
  cli::nonempty(s->add_option("BASE", a.base_path, "baseline results file"))->required();
  cli::nonempty(s->add_option("NEW", a.new_path, "new results file"))->required();
  s->add_option("--threshold", a.threshold,
                "relative change that counts, e.g. 10% or 0.1 (default 10%)")
      ->each([](const std::string& text) { parse_fraction(text, "--threshold"); });
  cli::real(s->add_option("--alpha", a.alpha,
                          "significance level of the Mann-Whitney U test (default 0.05)"),
            RealRange{0, 1, true, true});
  s->add_flag("--markdown", a.markdown, "print a Markdown table (for a CI comment)");
  s->add_flag("--require-all", a.require_all,
              "a row of BASE missing from NEW is a regression (exit 1)");
  return {s, [&a] { return run_compare_command(a); }};
}

Command add_calibrate(CLI::App& app, CalibrateArgs& a) {
  auto* s = app.add_subcommand("calibrate", "measure this machine's sgemm rate (all threads and "
                                            "one) and copy bandwidth, and a GPU's cuBLAS GEMM "
                                            "rates, copy bandwidth and clocks");
  s->add_flag("--quick", a.quick, "smaller sizes (less accurate, well under a second)");
  s->add_flag("--json", a.json, "machine-readable output");
  return {s, [&a] { return run_calibrate_command(a); }};
}

struct ExportArgs {
  std::string kernel, dir;
  std::vector<std::string> axes;
};

// One point's inputs and float64 reference as .npy, for the PyTorch peers (peers/).
Command add_export(CLI::App& app, ExportArgs& a) {
  auto* s = app.add_subcommand("export", "write one point's seeded inputs (.npy, eval's layout) "
                                         "and the float64 reference of its checked rows");
  cli::nonempty(s->add_option("--kernel", a.kernel, "kernel name (attnbench list)"), "name")
      ->required();
  cli::nonempty(s->add_option("--axis", a.axes,
                              "name=value (repeatable); unset axes as in a sweep"),
                "axis")
      ->take_all()
      ->allow_extra_args(false);
  cli::nonempty(s->add_option("--out", a.dir, "folder to write (created)"))->required();
  return {s, [&a] { return run_export_command(a.kernel, a.axes, a.dir); }};
}

struct MergeArgs {
  std::vector<std::string> files;
  std::string out;
};

Command add_merge(CLI::App& app, MergeArgs& a, const std::string& cmdline) {
  auto* s = app.add_subcommand("merge", "join results files of the same sweep (e.g. the shards of "
                                        "sweep --shard) into one; never overwrites --out");
  cli::nonempty(s->add_option("FILES", a.files, "results files of one sweep"))->required();
  cli::nonempty(s->add_option("--out", a.out, "the merged results file (must not exist)"))
      ->required();
  return {s, [&a, &cmdline] { return run_merge_command(a.files, a.out, cmdline); }};
}

// The chosen subcommand's exit status; a bad input is one line on stderr and exit 2.
int run_chosen(const std::vector<Command>& commands) {
  try {
    for (const auto& [sub, run] : commands)
      if (*sub) return run();
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "attnbench: error: out of memory\n");
  } catch (const std::exception& e) {
    fmt::print(stderr, "attnbench: error: {}\n", one_line(e.what()));
  }
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // idle OpenMP threads spin briefly, then sleep, unless the user chose (docs/measurement.md)
  noise::reexec_with_short_spin(argv);
  heap::install_interposer();
  std::signal(SIGXFSZ, SIG_IGN);  // a file size limit fails the write (one line), not the process
  const std::string cmdline = command_line(argc, argv);
  CLI::App app{"attnbench: benchmarks and reproduction of efficient self-attention for sequential "
               "recommendation"};
  app.require_subcommand(1);
  app.footer(kExitStatuses);
  SweepArgs sweep;
  ListArgs list;
  EvalArgs eval;
  CompareArgs compare;
  CalibrateArgs calibrate;
  ExportArgs exporter;
  MergeArgs merge;
  const std::vector<Command> commands = {
      add_sweep(app, sweep, cmdline),  add_list(app, list),           add_eval(app, eval),
      add_compare(app, compare),       add_calibrate(app, calibrate), add_export(app, exporter),
      add_merge(app, merge, cmdline)};
  if (const auto status = cli::parse(app, argc, argv, "attnbench")) return *status;
  return run_chosen(commands);
}
