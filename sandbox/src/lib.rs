//! Privilege dropping for the daemons (users, capabilities, no_new_privs, seccomp): filled by the privilege issue.
