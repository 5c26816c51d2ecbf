import { buildUi } from '../../scripts/build-ui.js';

/** The browser project's global setup: builds dist/ui from ui/, so the gateway under test serves the current pages. */
export default async function setup(): Promise<void> {
  await buildUi();
}
