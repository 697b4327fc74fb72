/* vireo ctl: the command-line QMP client (src/qmp/ctl.c). */
#ifndef VIREO_QMP_CTL_H
#define VIREO_QMP_CTL_H

/* argv[0] is "ctl". Returns the exit status. */
int ctl_main(int argc, char **argv);

#endif
