/**
 * This library's version as libiio-style fields: reported as the backend version of
 * contexts that have no version of their own (XML without version-git, local:, emu:).
 */
export const LIBRARY_VERSION = { major: 0, minor: 1, git: 'iiokit' } as const;

/** Package version string. */
export const PACKAGE_VERSION = '0.1.0';
