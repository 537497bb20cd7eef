// SPDX-License-Identifier: LGPL-2.1-or-later
// The state file in /run/lkmd, read back as root at every start: whatever parse() keeps has a
// valid, normalized module name, and parse → serialize → parse gives the same records.
#include <cstdint>
#include <string_view>

#include "fuzz_input.h"
#include "module_registry.h"
#include "request_name.h"

namespace {

bool sameRecords(const lkmd::ModuleRegistry &a, const lkmd::ModuleRegistry &b) {
    if (a.size() != b.size())
        return false;
    for (const auto &[name, record] : a.records()) {
        const lkmd::ModuleRecord *other = b.find(name);
        if (other == nullptr || other->origin != record.origin ||
            other->trigger != record.trigger || other->device != record.device ||
            other->loadedAtUsec != record.loadedAtUsec || other->autoclean != record.autoclean ||
            other->pinned != record.pinned || other->identity != record.identity ||
            other->inserting != record.inserting)
            return false;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char *>(data), size);
    lkmd::ModuleRegistry first;
    std::size_t skipped = 0;
    if (lkmd::ModuleRegistry::parse(text, &first, &skipped) < 0)
        return 0;
    for (const auto &[name, record] : first.records()) {
        FUZZ_ASSERT(lkmd::whyInvalidModuleName(name) == nullptr);
        FUZZ_ASSERT(lkmd::normalizeModuleName(name) == name);
    }
    const std::string written = first.serialize();
    lkmd::ModuleRegistry second;
    std::size_t skippedAgain = 0;
    FUZZ_ASSERT(lkmd::ModuleRegistry::parse(written, &second, &skippedAgain) == 0);
    FUZZ_ASSERT(skippedAgain == 0);
    FUZZ_ASSERT(sameRecords(first, second));
    FUZZ_ASSERT(second.serialize() == written);
    return 0;
}
