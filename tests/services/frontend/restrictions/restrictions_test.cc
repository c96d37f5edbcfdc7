// tests/services/frontend/restrictions/restrictions_test.cc
//
// The restriction lists are evaluated as Postfix's smtpd_check.c does: in order, OK ends a
// list (later lists still run), REJECT/DEFER end everything, DUNNO goes on; DEFER_IF_PERMIT
// turns a final permit into its 4xx, DEFER_IF_REJECT a later reject into its 4xx; with
// delay_reject the connect, HELO and MAIL lists run at RCPT, before the RCPT list; actions
// (PREPEND, HOLD, DISCARD) reach the transaction only when the command goes on.
//
// Never: uses the network.
#include "services/frontend/restrictions/restrictions.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "prometheus/registry.h"
#include "tests/services/frontend/restrictions/run_awaitable.h"

namespace sluice::frontend::restrictions {
namespace {

// A check that answers a fixed verdict and records that it ran.
class Fixed : public Check {
 public:
  Fixed(std::string name, Verdict v, std::vector<std::string>* ran) : name_(std::move(name)), v_(std::move(v)), ran_(ran) {}
  std::string_view name() const override { return name_; }
  asio::awaitable<Verdict> Evaluate(const Request& request) override {
    ran_->push_back(name_ + "@" + std::string(ProtocolStateName(request.stage, true)));
    co_return v_;
  }

 private:
  std::string name_;
  Verdict v_;
  std::vector<std::string>* ran_;
};

Verdict Reject() { return Verdict::Refuse(Action::kReject, smtp::MakeReply(554, "5.7.1", "no")); }
Verdict Defer() { return Verdict::Refuse(Action::kDefer, smtp::MakeReply(450, "4.7.1", "later")); }

class RestrictionsTest : public ::testing::Test {
 protected:
  RestrictionsTest() : metrics_(registry_) {
    facts_.session_id = "S1";
    facts_.client_address = "192.0.2.1";
    facts_.helo = "client.example";
    facts_.esmtp = true;
  }
  void Add(Restrictions& r, Stage stage, const std::string& name, Verdict v) {
    r.Add(stage, std::make_shared<Fixed>(name, std::move(v), &ran_));
  }
  smtp::Reply Run(const Restrictions& r, Stage command, Actions& actions) {
    Request req;
    req.command = command;
    req.facts = &facts_;
    req.in_transaction = command != Stage::kConnect && command != Stage::kHelo;
    req.sender = "s@example.org";
    req.recipient = command == Stage::kRcpt ? "r@example.net" : "";
    req.executor = io_.get_executor();
    return RunAwaitable(io_, r.Evaluate(req, actions));
  }
  double Refusals(const std::string& check, const std::string& action) {
    for (const auto& f : registry_.Collect()) {
      if (f.name != "sluice_frontend_restriction_refusals_total") continue;
      for (const auto& m : f.metric) {
        std::string c, a;
        for (const auto& l : m.label) {
          if (l.name == "check") c = l.value;
          if (l.name == "action") a = l.value;
        }
        if (c == check && a == action) return m.counter.value;
      }
    }
    return -1;
  }

  asio::io_context io_;
  prometheus::Registry registry_;
  FrontendMetrics metrics_;
  smtp::SessionFacts facts_;
  std::vector<std::string> ran_;
};

TEST_F(RestrictionsTest, OkEndsItsListButLaterListsStillRun) {
  Restrictions r({}, &metrics_);
  Add(r, Stage::kConnect, "a", Verdict::Ok());
  Add(r, Stage::kConnect, "b", Reject());
  Add(r, Stage::kRcpt, "c", Verdict::Dunno());
  Actions actions;
  EXPECT_TRUE(Run(r, Stage::kRcpt, actions).empty());
  EXPECT_EQ(ran_, (std::vector<std::string>{"a@CONNECT", "c@RCPT"}));
}

TEST_F(RestrictionsTest, RejectEndsEverythingAndIsCountedOnce) {
  Restrictions r({}, &metrics_);
  Add(r, Stage::kHelo, "h", Verdict::Dunno());
  Add(r, Stage::kMail, "m", Reject());
  Add(r, Stage::kRcpt, "never", Verdict::Ok());
  Actions actions;
  smtp::Reply reply = Run(r, Stage::kRcpt, actions);
  EXPECT_EQ(reply.code, 554);
  EXPECT_EQ(ran_, (std::vector<std::string>{"h@EHLO", "m@MAIL"}));
  EXPECT_EQ(Refusals("m", "reject"), 1);
  EXPECT_EQ(Refusals("never", "reject"), 0);
}

TEST_F(RestrictionsTest, DelayRejectRunsEarlierListsOnlyAtRcpt) {
  Restrictions r({}, &metrics_);
  Add(r, Stage::kConnect, "c", Reject());
  Actions actions;
  EXPECT_FALSE(r.HasChecksFor(Stage::kConnect));
  EXPECT_TRUE(Run(r, Stage::kConnect, actions).empty());
  EXPECT_TRUE(Run(r, Stage::kMail, actions).empty());
  EXPECT_TRUE(ran_.empty());
  EXPECT_EQ(Run(r, Stage::kRcpt, actions).code, 554);
}

TEST_F(RestrictionsTest, WithoutDelayRejectEachListRunsAtItsCommand) {
  Restrictions r({.delay_reject = false}, &metrics_);
  Add(r, Stage::kConnect, "c", Verdict::Dunno());
  Add(r, Stage::kMail, "m", Defer());
  Actions actions;
  EXPECT_TRUE(Run(r, Stage::kConnect, actions).empty());
  EXPECT_EQ(Run(r, Stage::kMail, actions).code, 450);
  EXPECT_TRUE(Run(r, Stage::kRcpt, actions).empty());
  EXPECT_EQ(ran_, (std::vector<std::string>{"c@CONNECT", "m@MAIL"}));
  EXPECT_EQ(Refusals("m", "defer"), 1);
}

TEST_F(RestrictionsTest, DeferIfPermitTurnsAPermitInto4xx) {
  Restrictions r({}, &metrics_);
  Add(r, Stage::kConnect, "dnsbl", Verdict::Refuse(Action::kDeferIfPermit, smtp::MakeReply(450, "4.7.1", "maybe")));
  Add(r, Stage::kRcpt, "ok", Verdict::Ok());
  Actions actions;
  smtp::Reply reply = Run(r, Stage::kRcpt, actions);
  EXPECT_EQ(reply.code, 450);
  EXPECT_EQ(reply.ToString(), "450 4.7.1 maybe");
  EXPECT_EQ(Refusals("dnsbl", "defer"), 1);
}

TEST_F(RestrictionsTest, DeferIfPermitLosesToAReject) {
  Restrictions r({}, &metrics_);
  Add(r, Stage::kConnect, "maybe", Verdict::Refuse(Action::kDeferIfPermit, smtp::MakeReply(450, "4.7.1", "maybe")));
  Add(r, Stage::kRcpt, "no", Reject());
  Actions actions;
  EXPECT_EQ(Run(r, Stage::kRcpt, actions).code, 554);
}

TEST_F(RestrictionsTest, DeferIfRejectTurnsALaterRejectInto4xx) {
  Restrictions r({}, &metrics_);
  Add(r, Stage::kRcpt, "soft", Verdict::Refuse(Action::kDeferIfReject, smtp::MakeReply(450, "4.7.1", "not sure")));
  Add(r, Stage::kRcpt, "hard", Reject());
  Actions actions;
  EXPECT_EQ(Run(r, Stage::kRcpt, actions).ToString(), "450 4.7.1 not sure");
  ran_.clear();
  Restrictions permit({}, &metrics_);
  Add(permit, Stage::kRcpt, "soft", Verdict::Refuse(Action::kDeferIfReject, smtp::MakeReply(450, "4.7.1", "x")));
  EXPECT_TRUE(Run(permit, Stage::kRcpt, actions).empty()) << "DEFER_IF_REJECT alone permits";
}

TEST_F(RestrictionsTest, ActionsReachTheTransactionOnlyWhenTheCommandGoesOn) {
  Restrictions r({}, &metrics_);
  Verdict prepend;
  prepend.prepend.push_back("X-Checked: yes");
  Verdict hold;
  hold.hold = "looks odd";
  Add(r, Stage::kMail, "p", prepend);
  Add(r, Stage::kRcpt, "h", hold);
  Actions actions;
  EXPECT_TRUE(Run(r, Stage::kRcpt, actions).empty());
  EXPECT_TRUE(Run(r, Stage::kRcpt, actions).empty());
  EXPECT_EQ(actions.prepend, std::vector<std::string>{"X-Checked: yes"}) << "deduplicated across recipients";
  EXPECT_EQ(actions.hold.value_or(""), "looks odd");

  Restrictions refusing({}, &metrics_);
  Add(refusing, Stage::kMail, "p", prepend);
  Add(refusing, Stage::kRcpt, "no", Reject());
  Actions none;
  EXPECT_EQ(Run(refusing, Stage::kRcpt, none).code, 554);
  EXPECT_TRUE(none.prepend.empty());
}

TEST_F(RestrictionsTest, DiscardPermitsAndMarksTheTransaction) {
  Restrictions r({}, &metrics_);
  Verdict discard;
  discard.discard = true;
  Add(r, Stage::kRcpt, "d", discard);
  Add(r, Stage::kRcpt, "never", Reject());
  Actions actions;
  EXPECT_TRUE(Run(r, Stage::kRcpt, actions).empty());
  EXPECT_TRUE(actions.discard);
}

}  // namespace
}  // namespace sluice::frontend::restrictions
