import { Etcd3 } from 'etcd3';
import { EtcdLogStore, type EtcdTerm } from '../../src/store/etcd';
import type { LogStore } from '../../src/store/types';
import { startEtcd, type EtcdCluster } from '../harness';
import { describeLogStoreContract } from '../store-contract';

const CHUNK = 64 * 1024;
const silent = { warn: () => undefined };

describe('EtcdLogStore on a real etcd', () => {
  let etcd: EtcdCluster;
  let admin: Etcd3;
  let clusters = 0;

  beforeAll(async () => {
    etcd = await startEtcd();
    admin = new Etcd3({ hosts: etcd.endpoints });
  });
  afterAll(async () => {
    admin.close();
    await etcd.dispose();
  });

  describeLogStoreContract('EtcdLogStore', async () => {
    const cluster = `contract${++clusters}`;
    const opened: LogStore[] = [];
    return {
      chunkBytes: CHUNK,
      open: async () => {
        const s = new EtcdLogStore({
          endpoints: etcd.endpoints,
          cluster,
          snapshotChunkBytes: CHUNK,
          logger: silent,
        });
        opened.push(s);
        return s;
      },
      // What an operator (or an expired lease) does: the key goes, the term must notice.
      depose: async () => {
        await admin.delete().key(`/flotilla/${cluster}/leader`);
      },
      writeChunksOnly: async (term, snapshot) => {
        await (term as EtcdTerm).writeSnapshotChunks(snapshot);
      },
      close: async () => {
        for (const s of opened) await s.close();
      },
    };
  });
});
