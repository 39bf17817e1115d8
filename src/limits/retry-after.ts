/** Whole seconds until `time`, at least 1 (for Retry-After). */
export const secondsUntil = (time: Date) => Math.max(1, Math.ceil((time.getTime() - Date.now()) / 1000));
