// SPDX-License-Identifier: LGPL-2.1-or-later
//
// resolve_bench: how long it takes to turn a request (a modalias, a kernel request name, a module
// name) into module names, three ways plus a floor, in one run over the same queries:
//
//   lkmd      lkmd's resolver: one persistent KmodBackend (daemon/kmod_backend.h), whose
//             context keeps the indexes loaded and checks they are current on every call
//   floor     (for reference) one persistent libkmod context, indexes loaded, lookup only:
//             no staleness check, no blacklist filter
//   libkmod   a fresh libkmod context per query: kmod_new + kmod_module_new_from_lookup +
//             kmod_unref (what a one-shot tool linking libkmod pays, indexes read on demand)
//   modprobe  kmod's `modprobe -d ROOT -S KVER -R QUERY`, one process per query (fork, exec,
//             kmod_new, kmod_load_resources, lookup, print): what a helper-per-event costs
//
// Queries: every pattern of MODULE_DIR/modules.alias instantiated into one concrete string that
// matches it ("pci:v00008086d0000100Esv*sd*bc*sc*i*" -> "pci:v00008086d0000100Esv00000000sd000
// 00000bc00sc00i00"; checked with fnmatch), kernel request names (fs-vfat, net-pf-10,
// char-major-10-237 ...), every 8th module name, and names that match nothing. modprobe runs on
// an evenly spaced sample (--modprobe-sample, default 2000) of the same list, and its ratios are
// against lkmd and libkmod on that same sample.
//
//   resolve_bench [--module-dir DIR] [--modprobe PATH] [--modprobe-sample N] [--repeat N]
//
// DIR defaults to the extracted test kernel: <source root>/.cache/vm/kernel-6.12/root/lib/
// modules/<the one version there>, the source root being LKMD_SOURCE_ROOT (compile-time) or the
// current directory. DIR must end in lib/modules/KVER (modprobe is given ROOT and KVER).
//
// Built by meson (bench/meson.build):
//
//   resolve_bench = executable('resolve_bench', 'resolve_bench.cpp',
//     dependencies: [lkmd_core_dep, libkmod_dep],
//     cpp_args: ['-DLKMD_SOURCE_ROOT="' + meson.project_source_root() + '"'],
//     install: false)
//   run_target('bench-resolve', command: [resolve_bench])
//
// or by hand against a build dir B:
//   g++ -std=c++20 -O2 -D_GNU_SOURCE -Idaemon -Iprotocol -IB bench/resolve_bench.cpp
//     B/daemon/liblkmd-core.a B/protocol/liblkmd-protocol.a
//     $(pkg-config --cflags --libs libkmod libsystemd spdlog) -lpthread -o resolve_bench
//   (one line)

#include <fcntl.h>
#include <fnmatch.h>
#include <spawn.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <libkmod.h>
#include <spdlog/spdlog.h>

#include "kmod_backend.h"

extern char **environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Query {
    std::string text;
    std::string kind;  // alias, request, module, unknown
};

// ------------------------------------------------------------------ query set

// Width of the hex field after a tag in PCI and USB modaliases (file2alias.c).
int fieldWidth(const std::string &bus, const std::string &tag) {
    static const std::map<std::string, std::map<std::string, int>> widths = {
        {"pci", {{"v", 8}, {"d", 8}, {"sv", 8}, {"sd", 8}, {"bc", 2}, {"sc", 2}, {"i", 2}}},
        {"usb",
         {{"v", 4},
          {"p", 4},
          {"d", 4},
          {"dc", 2},
          {"dsc", 2},
          {"dp", 2},
          {"ic", 2},
          {"isc", 2},
          {"ip", 2},
          {"in", 2}}},
        {"hid", {{"b", 4}, {"g", 4}, {"v", 8}, {"p", 8}}},
        {"virtio", {{"d", 8}, {"v", 8}}},
    };
    auto b = widths.find(bus);
    if (b == widths.end())
        return -1;
    auto t = b->second.find(tag);
    return t == b->second.end() ? -1 : t->second;
}

// One concrete string the glob pattern matches, looking like a real modalias where the bus is
// known: "*" after a PCI/USB field tag becomes that field's width of zeros, "*" elsewhere
// becomes nothing (before ':' or at the end) or "0"; "?" becomes "0"; "[..]" its first member.
std::string instantiate(const std::string &pattern) {
    const std::string bus = pattern.substr(0, pattern.find(':'));
    std::string out;
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        const char c = pattern[i];
        if (c == '*') {
            std::size_t tagStart = out.size();
            while (tagStart > 0 && std::isalpha(static_cast<unsigned char>(out[tagStart - 1])))
                --tagStart;
            const int width = fieldWidth(bus, out.substr(tagStart));
            const char next = i + 1 < pattern.size() ? pattern[i + 1] : '\0';
            if (width > 0 && out.find(':') != std::string::npos)
                out.append(static_cast<std::size_t>(width), '0');
            else if (next == '\0' || next == ':' || next == '*')
                ;
            else
                out += '0';
        } else if (c == '?') {
            out += '0';
        } else if (c == '[') {
            const std::size_t close = pattern.find(']', i + 2);
            if (close == std::string::npos) {
                out += c;
                continue;
            }
            std::size_t first = i + 1;
            if (pattern[first] == '!' || pattern[first] == '^')
                out += 'Z';  // some character outside a small set; fnmatch checks below
            else
                out += pattern[first];
            i = close;
        } else if (c == '\\' && i + 1 < pattern.size()) {
            out += pattern[++i];
        } else {
            out += c;
        }
    }
    if (fnmatch(pattern.c_str(), out.c_str(), 0) == 0)
        return out;
    // Fallback: the shortest match.
    std::string plain;
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        if (pattern[i] == '*')
            continue;
        plain += pattern[i] == '?' ? '0' : pattern[i];
    }
    return fnmatch(pattern.c_str(), plain.c_str(), 0) == 0 ? plain : std::string();
}

std::vector<Query> buildQueries(const fs::path &moduleDir, std::size_t *patterns,
                                std::size_t *dropped) {
    std::vector<Query> queries;
    std::set<std::string> seen;
    auto add = [&](const std::string &text, const char *kind) {
        if (!text.empty() && seen.insert(text).second)
            queries.push_back({text, kind});
    };

    std::ifstream aliases(moduleDir / "modules.alias");
    std::string line;
    *patterns = 0;
    *dropped = 0;
    while (std::getline(aliases, line)) {
        std::istringstream words(line);
        std::string keyword, pattern, module;
        if (!(words >> keyword >> pattern >> module) || keyword != "alias")
            continue;
        ++*patterns;
        std::string concrete = instantiate(pattern);
        if (concrete.empty())
            ++*dropped;
        add(concrete, "alias");
    }

    // What the kernel asks for (docs/kernel.md, "How the kernel asks"), some present in this tree,
    // some not.
    for (const char *name : {"fs-vfat",
                             "fs-ntfs3",
                             "fs-ext4",
                             "fs-btrfs",
                             "fs-xfs",
                             "fs-nfs",
                             "fs-fuse",
                             "fs-cramfs",
                             "fs-hfs",
                             "fs-minix",
                             "fs-squashfs",
                             "fs-overlay",
                             "net-pf-10",
                             "net-pf-2-proto-132",
                             "net-pf-2-proto-132-type-1",
                             "net-pf-38",
                             "net-pf-16-proto-16",
                             "char-major-10-237",
                             "char-major-10-229",
                             "char-major-10-200",
                             "char-major-4-64",
                             "block-major-7-0",
                             "block-major-8-0",
                             "tty-ldisc-16",
                             "rtnl-link-dummy",
                             "rtnl-link-bridge",
                             "rtnl-link-vxlan",
                             "rtnl-link-wireguard",
                             "crypto-aes",
                             "crypto-sha256",
                             "crypto-xts(aes)",
                             "algif-hash",
                             "algif-skcipher",
                             "nft-chain-2-nat",
                             "nfnetlink-subsys-1",
                             "nft-expr-counter",
                             "nls_cp437",
                             "nls_ascii",
                             "netdev-eth0",
                             "netdev-d0",
                             "d0",
                             "devname:fuse",
                             "cpu:type:x86,ven0000fam0006mod003F:feature:,0000"})
        add(name, "request");

    // Module names (every 8th of modules.dep).
    std::ifstream deps(moduleDir / "modules.dep");
    std::size_t n = 0;
    while (std::getline(deps, line)) {
        if (n++ % 8 != 0)
            continue;
        std::string file = line.substr(0, line.find(':'));
        std::string name = fs::path(file).filename().string();
        name = name.substr(0, name.find(".ko"));
        std::replace(name.begin(), name.end(), '-', '_');
        add(name, "module");
    }

    // Names that match nothing.
    for (int i = 0; i < 50; ++i) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "no_such_module_%d", i);
        add(buf, "unknown");
        std::snprintf(buf, sizeof buf, "pci:v0000DEADd0000%04Xsv00000000sd00000000bcFFscFFiFF", i);
        add(buf, "unknown");
        std::snprintf(buf, sizeof buf, "usb:vFFFFp%04Xd0000dcFFdscFFdpFFicFEiscFEipFEin00", i);
        add(buf, "unknown");
    }
    return queries;
}

// ------------------------------------------------------------------ the three ways

struct Sample {
    std::vector<double> usec;
    std::vector<std::string> result;  // sorted module names, space separated ("" = none)
};

std::string joinSorted(std::vector<std::string> names) {
    std::sort(names.begin(), names.end());
    std::string out;
    for (const auto &n : names)
        out += (out.empty() ? "" : " ") + n;
    return out;
}

double since(Clock::time_point t0) {
    return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

void runLkmd(lkmd::KmodBackend &backend, const std::vector<Query> &qs, Sample *s) {
    for (const auto &q : qs) {
        std::vector<std::string> modules;
        const auto t0 = Clock::now();
        const int r = backend.resolve(q.text, &modules);
        s->usec.push_back(since(t0));
        s->result.push_back(r < 0 ? std::string() : joinSorted(modules));
    }
}

std::vector<std::string> lookupNames(kmod_ctx *ctx, const std::string &text, int *r) {
    kmod_list *list = nullptr;
    std::vector<std::string> names;
    *r = kmod_module_new_from_lookup(ctx, text.c_str(), &list);
    kmod_list *e;
    kmod_list_foreach(e, list) {
        kmod_module *m = kmod_module_get_module(e);
        names.emplace_back(kmod_module_get_name(m));
        kmod_module_unref(m);
    }
    kmod_module_unref_list(list);
    return names;
}

// The floor: one context with the indexes loaded, no staleness check, no blacklist filter.
void runPersistentContext(kmod_ctx *ctx, const std::vector<Query> &qs, Sample *s) {
    for (const auto &q : qs) {
        const auto t0 = Clock::now();
        int r = 0;
        std::vector<std::string> names = lookupNames(ctx, q.text, &r);
        s->usec.push_back(since(t0));
        s->result.push_back(joinSorted(names));
    }
}

void runFreshContext(const fs::path &moduleDir, const std::vector<Query> &qs, bool loadResources,
                     Sample *s) {
    for (const auto &q : qs) {
        const auto t0 = Clock::now();
        kmod_ctx *ctx = kmod_new(moduleDir.c_str(), nullptr);
        if (loadResources)
            kmod_load_resources(ctx);
        int r = 0;
        std::vector<std::string> names = lookupNames(ctx, q.text, &r);
        kmod_unref(ctx);
        s->usec.push_back(since(t0));
        s->result.push_back(joinSorted(names));
    }
}

void runModprobe(const std::string &modprobe, const std::string &root, const std::string &kver,
                 const std::vector<Query> &qs, Sample *s) {
    for (const auto &q : qs) {
        int out[2];
        if (pipe2(out, O_CLOEXEC) < 0) {
            std::perror("pipe2");
            std::exit(1);
        }
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
        std::vector<std::string> args = {modprobe, "-d", root, "-S", kver, "-R", "--", q.text};
        std::vector<char *> argv;
        for (auto &a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);

        const auto t0 = Clock::now();
        pid_t pid;
        const int e = posix_spawn(&pid, modprobe.c_str(), &actions, nullptr, argv.data(), environ);
        close(out[1]);
        posix_spawn_file_actions_destroy(&actions);
        if (e != 0) {
            std::fprintf(stderr, "resolve_bench: cannot run %s: %s\n", modprobe.c_str(),
                         std::strerror(e));
            std::exit(1);
        }
        std::string text;
        char buf[4096];
        ssize_t n;
        while ((n = read(out[0], buf, sizeof buf)) > 0)
            text.append(buf, static_cast<std::size_t>(n));
        close(out[0]);
        int status;
        waitpid(pid, &status, 0);
        s->usec.push_back(since(t0));
        std::istringstream words(text);
        std::vector<std::string> names;
        for (std::string w; words >> w;)
            names.push_back(w);
        s->result.push_back(joinSorted(names));
    }
}

// ------------------------------------------------------------------ report

double percentile(std::vector<double> v, double p) {
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    const std::size_t k = static_cast<std::size_t>(std::clamp(
        p / 100.0 * static_cast<double>(v.size()) + 0.5, 1.0, static_cast<double>(v.size())));
    return v[k - 1];
}

struct Stats {
    double p50, p90, p99, mean;
};

Stats stats(const std::vector<double> &v) {
    double sum = 0;
    for (double x : v)
        sum += x;
    return {percentile(v, 50), percentile(v, 90), percentile(v, 99),
            v.empty() ? 0 : sum / static_cast<double>(v.size())};
}

std::vector<double> pick(const std::vector<double> &v, const std::vector<std::size_t> &idx) {
    std::vector<double> out;
    for (auto i : idx)
        out.push_back(v[i]);
    return out;
}

void printRow(const char *name, std::size_t n, const Stats &s, const Stats &base) {
    std::printf("| %-30s | %6zu | %9.1f | %9.1f | %9.1f | %9.1f | %7.1fx | %7.1fx |\n", name, n,
                s.p50, s.p90, s.p99, s.mean, s.p50 / base.p50, s.p99 / base.p99);
}

void printHeader(const char *title) {
    std::printf("\n%s\n\n", title);
    std::printf("| %-30s | %6s | %9s | %9s | %9s | %9s | %8s | %8s |\n", "method (usec per query)",
                "n", "median", "p90", "p99", "mean", "p50/lkmd", "p99/lkmd");
    std::printf(
        "|%s|%s|%s|%s|%s|%s|%s|%s|\n", std::string(32, '-').c_str(), std::string(8, '-').c_str(),
        std::string(11, '-').c_str(), std::string(11, '-').c_str(), std::string(11, '-').c_str(),
        std::string(11, '-').c_str(), std::string(10, '-').c_str(), std::string(10, '-').c_str());
}

fs::path defaultModuleDir() {
    std::vector<fs::path> roots;
#ifdef LKMD_SOURCE_ROOT
    roots.emplace_back(LKMD_SOURCE_ROOT);
#endif
    roots.push_back(fs::current_path());
    const char *cache = std::getenv("LKMD_CACHE_DIR");
    for (const auto &root : roots) {
        const fs::path base = (cache && *cache ? fs::path(cache) : root / ".cache" / "vm") /
                              "kernel-6.12" / "root" / "lib" / "modules";
        std::error_code ec;
        for (const auto &e : fs::directory_iterator(base, ec))
            if (fs::exists(e.path() / "modules.alias.bin"))
                return e.path();
    }
    return {};
}

[[noreturn]] void usage(const char *msg) {
    std::fprintf(stderr,
                 "resolve_bench: %s\nUsage: resolve_bench [--module-dir DIR] [--modprobe PATH] "
                 "[--modprobe-sample N] [--repeat N]\n",
                 msg);
    std::exit(2);
}

}  // namespace

int main(int argc, char **argv) {
    fs::path moduleDir;
    std::string modprobe;
    std::size_t modprobeSample = 2000;
    int repeat = 3;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc)
                usage(("missing value for " + a).c_str());
            return argv[++i];
        };
        if (a == "--module-dir")
            moduleDir = value();
        else if (a == "--modprobe")
            modprobe = value();
        else if (a == "--modprobe-sample")
            modprobeSample = std::stoul(value());
        else if (a == "--repeat")
            repeat = std::max(1, std::stoi(value()));
        else
            usage(("unknown argument " + a).c_str());
    }
    if (moduleDir.empty())
        moduleDir = defaultModuleDir();
    if (moduleDir.empty() || !fs::exists(moduleDir / "modules.alias"))
        usage(
            "no module tree: give --module-dir DIR (…/lib/modules/KVER), or fetch the test "
            "kernel with tests/vm/kernel.py");
    moduleDir = fs::canonical(moduleDir);
    const std::string kver = moduleDir.filename().string();
    const fs::path root = moduleDir.parent_path().parent_path().parent_path();
    if (moduleDir.parent_path().filename() != "modules" ||
        moduleDir.parent_path().parent_path().filename() != "lib")
        usage("the module dir must end in lib/modules/KVER");
    if (modprobe.empty())
        for (const char *p : {"/usr/sbin/modprobe", "/sbin/modprobe", "/usr/bin/modprobe"})
            if (access(p, X_OK) == 0) {
                modprobe = p;
                break;
            }

    spdlog::set_level(spdlog::level::warn);  // the backend logs index reloads at info

    std::size_t patterns = 0, dropped = 0;
    std::vector<Query> queries = buildQueries(moduleDir, &patterns, &dropped);
    std::map<std::string, std::size_t> kinds;
    for (const auto &q : queries)
        ++kinds[q.kind];

    int error = 0;
    auto backend = lkmd::KmodBackend::create(moduleDir, &error);
    if (!backend) {
        std::fprintf(stderr, "resolve_bench: KmodBackend::create(%s): %s\n", moduleDir.c_str(),
                     std::strerror(-error));
        return 1;
    }

    // Evenly spaced sample for the process-per-query method.
    std::vector<std::size_t> sampleIdx;
    const std::size_t m = std::min(modprobeSample, queries.size());
    for (std::size_t k = 0; k < m; ++k)
        sampleIdx.push_back(k * queries.size() / m);
    std::vector<Query> sampleQueries;
    for (auto i : sampleIdx)
        sampleQueries.push_back(queries[i]);

    utsname u{};
    uname(&u);
    char date[32];
    const std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
    std::printf("resolve_bench %s on %s (host kernel %s, %ld CPUs)\n", date, u.nodename, u.release,
                sysconf(_SC_NPROCESSORS_ONLN));
    std::printf("module tree: %s (%s)\n", moduleDir.c_str(), kver.c_str());
    std::printf(
        "queries: %zu (alias %zu from %zu patterns, %zu not instantiable; request %zu; "
        "module %zu; unknown %zu); modprobe sample %zu; best of %d passes\n",
        queries.size(), kinds["alias"], patterns, dropped, kinds["request"], kinds["module"],
        kinds["unknown"], sampleQueries.size(), repeat);
    for (std::size_t i = 0; i < queries.size(); i += queries.size() / 6 + 1)
        std::printf("  e.g. %-8s %s\n", queries[i].kind.c_str(), queries[i].text.c_str());

    // Warm the page cache and the backend; then each method `repeat` times, the pass with the
    // lowest median kept (noise on a shared machine only ever adds time).
    {
        Sample warm;
        runLkmd(*backend, queries, &warm);
    }
    auto best = [&](auto run) {
        Sample bestSample;
        double bestMedian = 0;
        for (int r = 0; r < repeat; ++r) {
            Sample s;
            run(&s);
            const double med = percentile(s.usec, 50);
            if (r == 0 || med < bestMedian) {
                bestMedian = med;
                bestSample = std::move(s);
            }
        }
        return bestSample;
    };
    const auto t0 = Clock::now();
    Sample lk = best([&](Sample *s) { runLkmd(*backend, queries, s); });
    kmod_ctx *persistent = kmod_new(moduleDir.c_str(), nullptr);
    kmod_load_resources(persistent);
    Sample floor = best([&](Sample *s) { runPersistentContext(persistent, queries, s); });
    kmod_unref(persistent);
    Sample fresh = best([&](Sample *s) { runFreshContext(moduleDir, queries, false, s); });
    Sample freshLoaded =
        best([&](Sample *s) { runFreshContext(moduleDir, sampleQueries, true, s); });
    Sample mp;
    if (!modprobe.empty())
        mp = best([&](Sample *s) { runModprobe(modprobe, root.string(), kver, sampleQueries, s); });
    const double wall = since(t0) / 1e6;

    // Agreement: lkmd applies kmod's blacklist to aliases (as modprobe does when loading);
    // `modprobe -R` and a plain lookup do not, so a blacklisted alias is a legitimate difference.
    std::size_t agreeFresh = 0, agreeModprobe = 0, found = 0;
    std::vector<std::string> differ;
    for (std::size_t i = 0; i < queries.size(); ++i) {
        found += !lk.result[i].empty();
        if (lk.result[i] == fresh.result[i])
            ++agreeFresh;
        else if (differ.size() < 5)
            differ.push_back(queries[i].text + ": lkmd '" + lk.result[i] + "', lookup '" +
                             fresh.result[i] + "'");
    }
    for (std::size_t k = 0; k < mp.result.size(); ++k)
        agreeModprobe += lk.result[sampleIdx[k]] == mp.result[k];

    const Stats lkAll = stats(lk.usec);
    printHeader("All queries:");
    printRow("lkmd KmodBackend::resolve", lk.usec.size(), lkAll, lkAll);
    printRow("libkmod persistent ctx (floor)", floor.usec.size(), stats(floor.usec), lkAll);
    printRow("libkmod fresh ctx per query", fresh.usec.size(), stats(fresh.usec), lkAll);

    const Stats lkSample = stats(pick(lk.usec, sampleIdx));
    printHeader("modprobe sample (same queries for every row):");
    printRow("lkmd KmodBackend::resolve", sampleIdx.size(), lkSample, lkSample);
    printRow("libkmod persistent ctx (floor)", sampleIdx.size(), stats(pick(floor.usec, sampleIdx)),
             lkSample);
    printRow("libkmod fresh ctx per query", sampleIdx.size(), stats(pick(fresh.usec, sampleIdx)),
             lkSample);
    printRow("libkmod fresh ctx + load_res", freshLoaded.usec.size(), stats(freshLoaded.usec),
             lkSample);
    if (!modprobe.empty())
        printRow("modprobe -R, process/query", mp.usec.size(), stats(mp.usec), lkSample);
    else
        std::printf("(no modprobe found: give --modprobe PATH)\n");

    std::printf("\nresolved to at least one module: %zu of %zu\n", found, queries.size());
    std::printf("lkmd == plain lookup: %zu of %zu", agreeFresh, queries.size());
    if (!mp.result.empty())
        std::printf("; lkmd == modprobe -R: %zu of %zu", agreeModprobe, mp.result.size());
    std::printf(" (differences: kmod's blacklist, which lkmd applies to aliases)\n");
    for (const auto &d : differ)
        std::printf("  differs: %s\n", d.c_str());
    std::printf("measured in %.1f s\n", wall);
    return 0;
}
