// SPDX-License-Identifier: LGPL-2.1-or-later
#include "log.h"

#include <mutex>

#include <spdlog/sinks/stdout_sinks.h>

namespace lkmd {
namespace {

thread_local const std::string *t_module = nullptr;

std::vector<spdlog::sink_ptr> &sinks() {
    static std::vector<spdlog::sink_ptr> configured;
    return configured;
}

}  // namespace

void setLogSinks(std::vector<spdlog::sink_ptr> configured, spdlog::level::level_enum level) {
    sinks() = std::move(configured);
    spdlog::set_level(level);
    spdlog::apply_all([&](const std::shared_ptr<spdlog::logger> &existing) {
        existing->sinks() = sinks();
        existing->set_level(level);
    });
}

const std::string *currentLogModule() {
    return t_module;
}

std::string printable(std::string_view text) {
    static constexpr std::size_t kMax = 256;
    std::string out;
    for (char c : text.substr(0, kMax)) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte >= 0x7f || c == '\\') {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[byte >> 4];
            out += kHex[byte & 0xf];
        } else {
            out += c;
        }
    }
    if (text.size() > kMax)
        out += "...";
    return out;
}

ModuleLogField::ModuleLogField(const std::string &module) : previous_(t_module) {
    t_module = &module;
}

ModuleLogField::~ModuleLogField() {
    t_module = previous_;
}

std::shared_ptr<spdlog::logger> logger(const std::string &component) {
    static std::mutex lock;
    std::lock_guard guard(lock);
    if (auto existing = spdlog::get(component))
        return existing;
    if (sinks().empty())
        sinks().push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
    auto created = std::make_shared<spdlog::logger>(component, sinks().begin(), sinks().end());
    created->set_level(spdlog::get_level());
    spdlog::register_logger(created);
    return created;
}

}  // namespace lkmd
