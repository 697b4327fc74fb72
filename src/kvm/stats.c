#include "kvm/stats.h"

#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "util/file.h"

int kvm_stats_open(int fd)
{
	return ioctl(fd, KVM_GET_STATS_FD, NULL);
}

int kvm_stats_write_json(int stats_fd, struct jsonw *j, const char *key)
{
	struct kvm_stats_header h;
	size_t desc_size;
	uint8_t *descs = NULL;
	uint64_t *values = NULL;
	uint32_t i, k;
	int ret = -1;

	if (stats_fd < 0 || pread_full(stats_fd, &h, sizeof(h), 0) < 0)
		return -1;
	if (h.num_desc > 4096 || h.name_size > 4096)
		return -1;
	desc_size = sizeof(struct kvm_stats_desc) + h.name_size;
	descs = calloc(h.num_desc, desc_size);
	if (!descs || pread_full(stats_fd, descs, h.num_desc * desc_size, h.desc_offset) < 0)
		goto out;
	jsonw_begin_object(j, key);
	for (i = 0; i < h.num_desc; i++) {
		struct kvm_stats_desc *d = (struct kvm_stats_desc *)(descs + i * desc_size);
		char name[256];

		if (d->size == 0 || d->size > 1024)
			continue;
		values = realloc(values, d->size * sizeof(uint64_t));
		if (!values ||
		    pread_full(stats_fd, values, d->size * sizeof(uint64_t),
			       (uint64_t)h.data_offset + d->offset) < 0)
			goto out_obj;
		snprintf(name, sizeof(name), "%.*s", (int)h.name_size, d->name);
		if (d->size == 1) {
			jsonw_uint(j, name, values[0]);
		} else {
			jsonw_begin_array(j, name);
			for (k = 0; k < d->size; k++)
				jsonw_uint(j, NULL, values[k]);
			jsonw_end_array(j);
		}
	}
	ret = 0;
out_obj:
	jsonw_end_object(j);
out:
	free(descs);
	free(values);
	return ret;
}
