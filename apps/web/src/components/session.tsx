'use client';
import { createContext, useContext } from 'react';
import type { RouterOutputs } from '../lib/api-types.ts';

export type Me = RouterOutputs['auth']['me'];

export const SessionContext = createContext<{ me: Me | undefined }>({ me: undefined });

export function useSession() {
  return useContext(SessionContext);
}
