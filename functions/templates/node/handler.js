'use strict';
// A faasflow function: handle(event, context) gets the event and returns the result, or a
// Promise of it. `event` is the event's data: an object (array, number…) when it is JSON sent
// as JSON or with no content type, a string otherwise ({data_base64} for bytes not UTF-8).
// `context` has activationId, deadline (epoch ms), functionName, env (this call's CE_* and
// FAASFLOW_* variables) and remainingMs(). Return anything JSON can hold; a string goes out as
// its text. Throwing fails the invocation. What you log is its log.

module.exports.handle = async (event, context) => {
  const name = event !== null && typeof event === 'object' ? event.name : event;
  console.log(`greeting ${JSON.stringify(name)} in ${context.functionName}`);
  return { message: `${process.env.GREETING || 'Hello'}, ${name || 'world'}!` };
};
