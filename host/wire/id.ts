// Probe and task ids (DESIGN.md "Task file"): they become MQTT topic levels and file names.

export const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const ID_RULE = "1–64 characters of A-Z a-z 0-9 . _ -";
