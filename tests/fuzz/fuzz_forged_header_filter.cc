// tests/fuzz/fuzz_forged_header_filter.cc
//
// The frontend's forged-header filter on hostile content. For any input: random chunk
// splits and byte-by-byte feeding give exactly the one-shot output; nothing is held beyond
// the bound. For content with CRLF line ends only (what the SMTP session lets through),
// checked against a plain whole-header reading written here: the output is the input with
// whole header fields taken out (the body and every kept field byte for byte, in order);
// no X-Sluice-* field and no Authentication-Results field naming our authserv-id is left;
// only such fields (or A-R fields longer than the bound) were taken out; the counters match.
//
// Never: calls anything with side effects.
#include <string>
#include <string_view>
#include <vector>

#include "lib/smtp/forged_header_filter.h"
#include "tests/fuzz/fuzz_check.h"

using sluice::smtp::ForgedHeaderFilter;

namespace {

constexpr std::string_view kOurs = "mx.test";
constexpr size_t kBound = 96;

struct Run {
  std::string out;
  uint64_t sluice = 0;
  uint64_t auth = 0;
};

Run Feed(const std::vector<std::string_view>& chunks) {
  ForgedHeaderFilter f({std::string(kOurs), kBound});
  Run r;
  for (std::string_view c : chunks) f.Feed(c, r.out);
  f.Finish(r.out);
  r.sluice = f.removed_sluice_fields();
  r.auth = f.removed_authentication_results();
  return r;
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool StartsWithIgnoreCase(std::string_view s, std::string_view lower) {
  if (s.size() < lower.size()) return false;
  for (size_t i = 0; i < lower.size(); ++i) {
    if (Lower(s[i]) != lower[i]) return false;
  }
  return true;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

bool HasBareCrOrLf(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n')) return true;
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return true;
  }
  return false;
}

// The header (up to and including the CRLF before the empty line) and what follows.
std::pair<std::string_view, std::string_view> SplitMessage(std::string_view in) {
  if (in.substr(0, 2) == "\r\n") return {in.substr(0, 0), in};
  const size_t pos = in.find("\r\n\r\n");
  if (pos == std::string_view::npos) return {in, in.substr(in.size())};
  return {in.substr(0, pos + 2), in.substr(pos + 2)};
}

// Header fields: a line that does not start with white space begins one.
std::vector<std::string_view> Fields(std::string_view header) {
  std::vector<std::string_view> fields;
  size_t start = 0, pos = 0;
  while (pos < header.size()) {
    size_t end = header.find("\r\n", pos);
    end = end == std::string_view::npos ? header.size() : end + 2;
    if (pos > start && header[pos] != ' ' && header[pos] != '\t') {
      fields.push_back(header.substr(start, pos - start));
      start = pos;
    }
    pos = end;
  }
  if (pos > start) fields.push_back(header.substr(start, pos - start));
  return fields;
}

bool IsSluice(std::string_view field) { return StartsWithIgnoreCase(field, "x-sluice-"); }

// Starts like an Authentication-Results field: the name, then white space or the colon. One
// longer than the bound may be taken out before its colon is even seen.
bool MaybeAuth(std::string_view field) {
  return StartsWithIgnoreCase(field, "authentication-results") && field.size() > 22 &&
         (field[22] == ':' || field[22] == ' ' || field[22] == '\t');
}

// The value of an Authentication-Results field (after "name WSP* :"), or false.
bool AuthValue(std::string_view field, std::string* value) {
  if (!StartsWithIgnoreCase(field, "authentication-results")) return false;
  size_t i = 22;
  while (i < field.size() && (field[i] == ' ' || field[i] == '\t')) ++i;
  if (i >= field.size() || field[i] != ':') return false;
  value->clear();
  for (size_t j = i + 1; j < field.size(); ++j) {
    if (field[j] == '\r' && j + 1 < field.size() && field[j + 1] == '\n') {
      ++j;  // unfold: CRLF goes, the white space stays
      continue;
    }
    value->push_back(field[j]);
  }
  return true;
}

// The authserv-id of an unfolded value: after white space and (nested) comments, a
// quoted-string or a token. Empty when there is none.
std::string AuthservId(std::string_view v) {
  size_t i = 0;
  for (;;) {
    while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) ++i;
    if (i < v.size() && v[i] == '(') {
      int depth = 0;
      for (; i < v.size(); ++i) {
        if (v[i] == '\\') {
          ++i;
          continue;
        }
        if (v[i] == '(') ++depth;
        if (v[i] == ')' && --depth == 0) {
          ++i;
          break;
        }
      }
      continue;
    }
    break;
  }
  std::string id;
  if (i < v.size() && v[i] == '"') {
    for (++i; i < v.size() && v[i] != '"'; ++i) {
      if (v[i] == '\\') {
        if (i + 1 == v.size()) break;  // a lone backslash at the very end escapes nothing
        ++i;
      }
      id.push_back(v[i]);
    }
    return id;
  }
  for (; i < v.size(); ++i) {
    const char c = v[i];
    if (c == ' ' || c == '\t' || c == ';' || c == '(') break;
    id.push_back(c);
  }
  return id;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const Run whole = Feed({in});
  {
    sluice::fuzz::SplitRng rng(in);
    const Run split = Feed(rng.Chunks(in, 17));
    FUZZ_CHECK(split.out == whole.out && split.sluice == whole.sluice && split.auth == whole.auth);
    std::vector<std::string_view> bytes;
    for (size_t i = 0; i < in.size(); ++i) bytes.push_back(in.substr(i, 1));
    const Run single = Feed(bytes);
    FUZZ_CHECK(single.out == whole.out && single.sluice == whole.sluice && single.auth == whole.auth);
  }
  FUZZ_CHECK(whole.out.size() <= in.size());
  if (HasBareCrOrLf(in)) return 0;

  const auto [header, rest] = SplitMessage(in);
  const auto [out_header, out_rest] = SplitMessage(whole.out);
  FUZZ_CHECK(rest == out_rest);  // the body, byte for byte
  const std::vector<std::string_view> fields = Fields(header);
  const std::vector<std::string_view> kept = Fields(out_header);
  size_t k = 0;
  uint64_t sluice = 0, auth = 0;
  for (std::string_view f : fields) {
    std::string value;
    const bool is_auth = AuthValue(f, &value);
    const std::string id = is_auth ? AuthservId(value) : "";
    const bool ours = is_auth && EqualsIgnoreCase(id, kOurs);
    if (k < kept.size() && kept[k] == f) {
      FUZZ_CHECK(!IsSluice(f));  // no X-Sluice-* field survives
      FUZZ_CHECK(!ours);         // nor an A-R naming us
      ++k;
      continue;
    }
    // Taken out: only what is ours to remove, or an A-R field past the bound.
    FUZZ_CHECK(IsSluice(f) || ours || (MaybeAuth(f) && f.size() > kBound));
    if (IsSluice(f)) {
      ++sluice;
    } else {
      ++auth;
    }
  }
  FUZZ_CHECK(k == kept.size());  // the output holds nothing but input fields, in order
  FUZZ_CHECK(sluice == whole.sluice && auth == whole.auth);
  return 0;
}
