// SPDX-License-Identifier: LGPL-2.1-or-later
#include "log.h"

#include <sys/stat.h>
#include <syslog.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <systemd/sd-journal.h>

namespace lkmd {
namespace {

int syslogPriority(spdlog::level::level_enum level) {
    switch (level) {
        case spdlog::level::trace:
        case spdlog::level::debug:
            return LOG_DEBUG;
        case spdlog::level::info:
            return LOG_INFO;
        case spdlog::level::warn:
            return LOG_WARNING;
        case spdlog::level::err:
            return LOG_ERR;
        case spdlog::level::critical:
            return LOG_CRIT;
        default:
            return LOG_INFO;
    }
}

thread_local const std::string *t_module = nullptr;

// Structured entries: the component becomes LKMD_COMPONENT= so journalctl can filter on it, and
// the module an entry is about becomes MODULE=.
class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
protected:
    void sink_it_(const spdlog::details::log_msg &msg) override {
        const std::string_view component(msg.logger_name.data(), msg.logger_name.size());
        const std::string module = t_module != nullptr ? "MODULE=" + *t_module : "";
        sd_journal_send("MESSAGE=%.*s", static_cast<int>(msg.payload.size()), msg.payload.data(),
                        "PRIORITY=%d", syslogPriority(msg.level), "LKMD_COMPONENT=%.*s",
                        static_cast<int>(component.size()), component.data(),
                        "SYSLOG_IDENTIFIER=lkmd", module.empty() ? nullptr : module.c_str(),
                        nullptr);
    }
    void flush_() override {}
};

bool stderrIsJournal() {
    const char *stream = std::getenv("JOURNAL_STREAM");
    if (stream == nullptr)
        return false;
    unsigned long long device = 0;
    unsigned long long inode = 0;
    if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2)
        return false;
    struct stat st {};
    if (fstat(STDERR_FILENO, &st) < 0)
        return false;
    return st.st_dev == device && st.st_ino == inode;
}

std::vector<spdlog::sink_ptr> &sinks() {
    static std::vector<spdlog::sink_ptr> configured;
    return configured;
}

}  // namespace

void setupLogging(spdlog::level::level_enum level) {
    spdlog::sink_ptr sink;
    if (stderrIsJournal()) {
        sink = std::make_shared<JournalSink>();
    } else {
        sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
        sink->set_pattern("%H:%M:%S.%e %L %n: %v");
    }
    sinks() = {sink};
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
