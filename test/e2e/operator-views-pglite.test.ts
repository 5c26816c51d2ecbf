import { operatorViewsSuite } from './operator-views.suite.js';

operatorViewsSuite('PGlite', async () => '  data_dir: "memory://"');
