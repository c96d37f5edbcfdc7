// lib/smtp/capabilities.cc -- see capabilities.h.
#include "lib/smtp/capabilities.h"
