// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdlib>
#include <memory>

#include "sd_ptr.h"

namespace lkmd::client {

// The RAII handles daemon and client share, under the names lkmctl uses.
using lkmd::BusError;
using lkmd::BusPtr;
using MessagePtr = lkmd::BusMessagePtr;

struct FreeDeleter {
    void operator()(void *memory) const { std::free(memory); }
};
using MallocedString = std::unique_ptr<char, FreeDeleter>;

}  // namespace lkmd::client
