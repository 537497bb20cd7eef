// SPDX-License-Identifier: LGPL-2.1-or-later
#include "signal_watch.h"

#include <signal.h>
#include <sys/signalfd.h>

namespace lkmd {
namespace {

constexpr int kSignals[] = {SIGTERM, SIGINT, SIGHUP};

}  // namespace

int SignalWatch::blockSignals() {
    sigset_t mask;
    sigemptyset(&mask);
    for (int signal : kSignals)
        sigaddset(&mask, signal);
    return -pthread_sigmask(SIG_BLOCK, &mask, nullptr);
}

std::unique_ptr<SignalWatch> SignalWatch::create(sd_event *event, std::function<void()> stop,
                                                 std::function<void()> reload, int *error) {
    std::unique_ptr<SignalWatch> watch(new SignalWatch(std::move(stop), std::move(reload)));
    for (int signal : kSignals) {
        sd_event_source *source = nullptr;
        *error = sd_event_add_signal(event, &source, signal, onSignal, watch.get());
        if (*error < 0)
            return nullptr;
        watch->sources_.emplace_back(source);
    }
    return watch;
}

int SignalWatch::onSignal(sd_event_source *, const struct signalfd_siginfo *info, void *userdata) {
    auto *self = static_cast<SignalWatch *>(userdata);
    if (info->ssi_signo == SIGHUP)
        self->reload_();
    else
        self->stop_();
    return 0;
}

}  // namespace lkmd
