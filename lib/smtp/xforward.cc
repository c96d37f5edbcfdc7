// lib/smtp/xforward.cc -- see xforward.h.
#include "lib/smtp/xforward.h"
