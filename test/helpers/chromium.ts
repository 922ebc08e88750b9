// The browser the browser tests drive: LIFELINE_CHROMIUM, else Debian's headless shell, which
// `npm test`'s pretest installs (scripts/pretest.ts says why that build).
import { DEBIAN_CHROMIUM } from '../../scripts/pretest.ts';

export const CHROMIUM = process.env.LIFELINE_CHROMIUM ?? DEBIAN_CHROMIUM;
