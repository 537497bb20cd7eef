// SPDX-License-Identifier: LGPL-2.1-or-later
#include "bus_errors.h"

#include <cerrno>
#include <cstdlib>
#include <iterator>

namespace lkmd::bus {
namespace {

// Distinct errnos per name, so that a client's sd_bus_error_get_errno() tells them apart. The map
// only goes from name to errno: the daemon always sets our names explicitly, never a bare errno
// (sd-bus would turn that into its own names, e.g. EACCES into AccessDenied). ESRCH for "not
// loaded" keeps ENOENT free for "no such module"; EOPNOTSUPP says a built-in cannot be unloaded;
// ENOTUNIQ is an alias of several modules, EREMOTE a module someone else loaded.
constexpr ErrorInfo kErrors[] = {
    {kErrorInvalidName, EINVAL, "invalid module name"},
    {kErrorNoSuchModule, ENOENT, "no such module"},
    {kErrorNotLoaded, ESRCH, "module is not loaded"},
    {kErrorBuiltin, EOPNOTSUPP, "module is built into the kernel"},
    {kErrorInUse, EBUSY, "module is in use"},
    {kErrorLoadFailed, EIO, "the module failed to load"},
    {kErrorUnloadFailed, ENOTRECOVERABLE, "the module failed to unload"},
    {kErrorDenied, EACCES, "denied by lkmd's policy"},
    {kErrorInvalidConfig, EBADMSG, "the configuration has errors"},
    {kErrorAmbiguousName, ENOTUNIQ, "the name stands for several modules"},
    {kErrorExternal, EREMOTE, "lkmd did not load this module"},
};

}  // namespace

const sd_bus_error_map kErrorMap[] = {
    SD_BUS_ERROR_MAP(kErrorInvalidName, EINVAL),
    SD_BUS_ERROR_MAP(kErrorNoSuchModule, ENOENT),
    SD_BUS_ERROR_MAP(kErrorNotLoaded, ESRCH),
    SD_BUS_ERROR_MAP(kErrorBuiltin, EOPNOTSUPP),
    SD_BUS_ERROR_MAP(kErrorInUse, EBUSY),
    SD_BUS_ERROR_MAP(kErrorLoadFailed, EIO),
    SD_BUS_ERROR_MAP(kErrorUnloadFailed, ENOTRECOVERABLE),
    SD_BUS_ERROR_MAP(kErrorDenied, EACCES),
    SD_BUS_ERROR_MAP(kErrorInvalidConfig, EBADMSG),
    SD_BUS_ERROR_MAP(kErrorAmbiguousName, ENOTUNIQ),
    SD_BUS_ERROR_MAP(kErrorExternal, EREMOTE),
    SD_BUS_ERROR_MAP_END,
};

const ErrorInfo *errorForErrno(int error) {
    error = std::abs(error);
    if (error == EAGAIN)  // delete_module(O_NONBLOCK) says EWOULDBLOCK when refcnt > 0
        error = EBUSY;
    for (const ErrorInfo &info : kErrors)
        if (info.error == error)
            return &info;
    return nullptr;
}

const ErrorInfo *errorForName(std::string_view name) {
    for (const ErrorInfo &info : kErrors)
        if (name == info.name)
            return &info;
    return nullptr;
}

static_assert(std::size(kErrors) + 1 == std::size(kErrorMap), "every error has a map entry");

}  // namespace lkmd::bus
