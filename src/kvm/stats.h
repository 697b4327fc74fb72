/* KVM's binary statistics (KVM_GET_STATS_FD, Documentation/virt/kvm/api.rst
 * 4.133): every counter KVM keeps for a VM or vCPU, by name. */
#ifndef VIREO_KVM_STATS_H
#define VIREO_KVM_STATS_H

#include "util/jsonw.h"

/* Opens the statistics fd of a VM or vCPU fd; -1 if unsupported. */
int kvm_stats_open(int fd);
/* Writes {"name": value, ...} (arrays for histograms) under key. */
int kvm_stats_write_json(int stats_fd, struct jsonw *j, const char *key);

#endif
