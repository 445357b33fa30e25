/** A caller's own request id (X-Request-ID, a KMS plugin call's uid) is recorded only in this shape; anything else is left out. */
export const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/
