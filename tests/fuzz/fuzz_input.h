// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "log.h"

// Splits a fuzzer's bytes into fields at NUL bytes: each target's seeds are its fields so joined.
inline std::vector<std::string> fuzzFields(const std::uint8_t *data, std::size_t size,
                                           std::size_t count) {
    std::vector<std::string> fields(count);
    std::string_view rest(reinterpret_cast<const char *>(data), size);
    for (std::size_t i = 0; i < count; ++i) {
        const std::size_t nul = i + 1 < count ? rest.find('\0') : std::string_view::npos;
        fields[i] = std::string(rest.substr(0, nul));
        rest = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
    }
    return fields;
}

// An invariant a fuzzer checks: a crash with the message, which libFuzzer reports with the input.
#define FUZZ_ASSERT(condition)                                                                \
    do {                                                                                      \
        if (!(condition)) {                                                                   \
            __builtin_fprintf(stderr, "invariant failed: %s (%s:%d)\n", #condition, __FILE__, \
                              __LINE__);                                                      \
            std::abort();                                                                     \
        }                                                                                     \
    } while (0)

// lkmd's warnings about junk are the expected answer to most inputs; writing them would be most
// of a run's time. (Each target is one file: this header is included once per program.)
extern "C" int LLVMFuzzerInitialize(int *, char ***) {
    lkmd::setLogSinks({}, spdlog::level::off);
    return 0;
}
