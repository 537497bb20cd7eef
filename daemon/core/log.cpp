// SPDX-License-Identifier: LGPL-2.1-or-later
#include "log.h"

#include <mutex>

#include <spdlog/sinks/stdout_sinks.h>

namespace lkmd {
namespace {

thread_local const LogFields *t_fields = nullptr;

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

LogFields::LogFields(std::vector<LogField> fields) : fields_(std::move(fields)), outer_(t_fields) {
    t_fields = this;
}

LogFields::~LogFields() {
    t_fields = outer_;
}

void forEachLogField(const std::function<void(const LogField &)> &visit) {
    std::vector<const LogFields *> live;
    for (const LogFields *fields = t_fields; fields != nullptr; fields = fields->outer_)
        live.push_back(fields);
    for (auto it = live.rbegin(); it != live.rend(); ++it)
        for (const LogField &field : (*it)->fields_)
            visit(field);
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
