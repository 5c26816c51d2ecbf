#!/usr/bin/env node
// The `quotagate` executable: everything happens in main().
import { main } from './main.js';

await main(process.argv.slice(2));
