// SPDX-License-Identifier: LGPL-2.1-or-later
#include "logging.h"

#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <systemd/sd-journal.h>

#include "log.h"

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

// Structured entries: the component becomes LKMD_COMPONENT= so journalctl can filter on it, and
// the module an entry is about becomes MODULE=.
class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
protected:
    void sink_it_(const spdlog::details::log_msg &msg) override {
        const std::string_view component(msg.logger_name.data(), msg.logger_name.size());
        const std::string *current = currentLogModule();
        const std::string module = current != nullptr ? "MODULE=" + *current : "";
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

}  // namespace

void setupLogging(spdlog::level::level_enum level) {
    spdlog::sink_ptr sink;
    if (stderrIsJournal()) {
        sink = std::make_shared<JournalSink>();
    } else {
        sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
        sink->set_pattern("%H:%M:%S.%e %L %n: %v");
    }
    setLogSinks({sink}, level);
}

}  // namespace lkmd
