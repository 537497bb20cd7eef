// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <string>
#include <vector>

#include "log.h"
#include "module_registry.h"
#include "request_log.h"
#include "requester.h"

namespace lkmd {

// The MESSAGE_ID of each kind of journal entry lkmd makes, described in units/lkmd.catalog, so
// that `journalctl MESSAGE_ID=... REQUESTER_UID=1000` finds what a user caused.
namespace message_id {
inline constexpr const char *kRequestServed = "37b925d9aa0b49f4a53952e68c822e13";
inline constexpr const char *kRequestRefused = "5644b5b31e9d4203b0bb356d7020bab4";
inline constexpr const char *kModuleLoaded = "d59eabed2163486da1804055e96a6d6d";
inline constexpr const char *kModuleUnloaded = "bd3f4dbfb9374e6e89ec313bc95e245e";
inline constexpr const char *kRequestAudited = "dcaf355e3343489a8597a4793942e727";
}  // namespace message_id

// REQUESTER_PID=, REQUESTER_UID=, REQUESTER_COMM=, REQUESTER_UNIT=, REQUESTER_USERNS=, ...
std::vector<LogField> requesterFields(const Requester &requester);
// One answered request: MESSAGE_ID=, REQUEST=, ORIGIN=, RESULT=, MODULE= per inserted module,
// DEVICE=, SUBSYSTEM=, DURATION_USEC= and the requester's.
std::vector<LogField> requestFields(const RequestRecord &request);
// A module lkmd loaded or unloads: MODULE=, REQUEST=, ORIGIN=, NEEDED_BY=, DEVICE= and the
// requester's.
std::vector<LogField> moduleFields(const std::string &module, const ModuleRecord &record);

// "Loaded 'fs-vfat' (kernel): fat, vfat; asked by pid 812 'mount' uid 0, called from
// get_fs_type"
std::string describeRequest(const RequestRecord &request);

}  // namespace lkmd
