// Entry point: reads the page's config (#tally-config, JSON) and starts the dashboard in #app.
import { start } from './app.js';

function boot() {
  const root = document.getElementById('app');
  const source = document.getElementById('tally-config');
  if (!root) return;
  let config;
  try {
    config = JSON.parse(source?.textContent ?? '');
  } catch {
    root.textContent = 'tally: the page has no valid #tally-config.';
    return;
  }
  start(root, config);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
else boot();
