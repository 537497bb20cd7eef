// SPDX-License-Identifier: LGPL-2.1-or-later
// Name validation and normalization: every name lkmd acts on passed whyInvalid*Name(), and a
// module's own name normalizes exactly as libkmod normalizes it (the name delete_module() and
// /sys/module/NAME will see; docs/kernel.md, "Names").
#include <cstdint>
#include <string>

#include <libkmod.h>

#include "fuzz_input.h"
#include "request_name.h"

namespace {

kmod_ctx *context() {
    // Names only: no index is read, so an empty module directory serves.
    static kmod_ctx *ctx = kmod_new("/nonexistent-lkmd-fuzz", nullptr);
    return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    const std::string name(reinterpret_cast<const char *>(data), size);
    const char *whyRequest = lkmd::whyInvalidRequestName(name);
    const char *whyModule = lkmd::whyInvalidModuleName(name);
    const bool modalias = lkmd::looksLikeModalias(name);

    if (whyRequest == nullptr) {
        FUZZ_ASSERT(!name.empty() && name.find('\0') == std::string::npos);
        FUZZ_ASSERT(name.size() <=
                    (modalias ? lkmd::kMaxModaliasLength : lkmd::kMaxModuleNameLength));
        FUZZ_ASSERT(modalias || name.find('/') == std::string::npos);
        FUZZ_ASSERT(name != "." && name != "..");
    }
    if (whyModule != nullptr)
        return 0;

    FUZZ_ASSERT(whyRequest == nullptr);
    const std::string normalized = lkmd::normalizeModuleName(name);
    FUZZ_ASSERT(lkmd::whyInvalidModuleName(normalized) == nullptr);
    FUZZ_ASSERT(lkmd::normalizeModuleName(normalized) == normalized);

    kmod_module *module = nullptr;
    FUZZ_ASSERT(context() != nullptr);
    FUZZ_ASSERT(kmod_module_new_from_name(context(), name.c_str(), &module) == 0);
    FUZZ_ASSERT(normalized == kmod_module_get_name(module));
    kmod_module_unref(module);
    return 0;
}
