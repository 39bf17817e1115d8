/**
 * Settings for the instances behind the e2e suites: presence goes offline quickly after a page
 * leaves, so that "the dot turns off" is seen within the tests' patience.
 */
export const E2E_SERVER_ENV = {
  POSTLINE_PRESENCE_GRACE_MS: '300',
  POSTLINE_POLL_PRESENCE_MS: '2000',
};
