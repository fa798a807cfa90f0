import { MemoryStore } from '../../src/sessions/memory.js';
import { storeContract, storeTtlContract } from './storeContract.js';

storeContract('memory:', async () => new MemoryStore());
storeTtlContract('memory:', async (ttl) => new MemoryStore(ttl));
