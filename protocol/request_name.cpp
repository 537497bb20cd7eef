// SPDX-License-Identifier: LGPL-2.1-or-later
#include "request_name.h"

#include <algorithm>

namespace lkmd {
namespace {

constexpr const char *kDotPhrase = "contains '.' (libkmod would cut the name there)";

bool isLowerAlnumOrUnderscore(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

// Module names and kernel request names: fs-vfat, char-major-10-237, net-pf-10-proto-132,
// crypto-cbc(aes)-all, nfnetlink-subsys-12, rtnl-link-dummy.
bool isPlainNameChar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    switch (c) {
        case '_':
        case '-':
        case '.':
        case ',':
        case '+':
        case '@':
        case '=':
        case '(':
        case ')':
            return true;
        default:
            return false;
    }
}

}  // namespace

bool looksLikeModalias(std::string_view name) {
    const std::size_t colon = name.find(':');
    if (colon == 0 || colon == std::string_view::npos)
        return false;
    for (char c : name.substr(0, colon))
        if (!isLowerAlnumOrUnderscore(c))
            return false;
    return true;
}

namespace {

// What no name may hold, whatever its kind.
const char *whyBadBytes(std::string_view name) {
    if (name.empty())
        return "name is empty";
    for (char c : name) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f)
            return "contains control characters";
        if (byte > 0x7e)
            return "contains non-ASCII bytes";
        if (c == ' ')
            return "contains spaces";
    }
    return nullptr;
}

}  // namespace

const char *whyInvalidRequestName(std::string_view name) {
    if (const char *why = whyBadBytes(name))
        return why;
    // A modalias is only ever matched against modules.alias patterns; "dmi:...:bd04/01/2014:"
    // carries a date with slashes. Every other name may end up in a path: no '/'.
    if (looksLikeModalias(name)) {
        if (name.size() > kMaxModaliasLength)
            return "modalias is longer than 4095 bytes";
        return nullptr;
    }
    if (name.find('/') != std::string_view::npos)
        return "contains '/'";
    if (name.size() > kMaxModuleNameLength)
        return "longer than 55 bytes";
    // "netdev-eth0.100" is a request; ".", ".." and ".x" are nothing libkmod could look up.
    if (name.front() == '.')
        return "starts with '.' (libkmod would cut the name there)";
    for (char c : name)
        if (!isPlainNameChar(c))
            return "contains characters not allowed in module names";
    return nullptr;
}

const char *whyInvalidModuleName(std::string_view name) {
    if (const char *why = whyBadBytes(name))
        return why;
    if (name.find('/') != std::string_view::npos)
        return "contains '/'";
    if (name.size() > kMaxModuleNameLength)
        return "longer than 55 bytes";
    for (char c : name) {
        const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                             (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!allowed)
            return c == '.' ? kDotPhrase : "contains characters not allowed in module names";
    }
    return nullptr;
}

const char *whyInvalidModuleReference(std::string_view name) {
    if (const char *why = whyInvalidRequestName(name))
        return why;
    if (name.find('.') != std::string_view::npos)
        return kDotPhrase;
    return nullptr;
}

std::string normalizeModuleName(std::string_view name) {
    std::string normalized(name);
    std::replace(normalized.begin(), normalized.end(), '-', '_');
    return normalized;
}

}  // namespace lkmd
