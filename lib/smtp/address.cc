// lib/smtp/address.cc -- see address.h.
#include "lib/smtp/address.h"
